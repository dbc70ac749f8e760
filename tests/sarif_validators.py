"""The two checks of a SARIF log the tests make: the SARIF 2.1.0 JSON Schema (``sarif_errors``), and
Microsoft's SARIF validator (npm ``@microsoft/sarif-multitool-linux``, a self-contained binary that
``make test`` installs into ``.venv/sarif-multitool``): its errors and warnings on a SARIF log, with
the SARIF and GitHub (GHAS) rule sets. Where it is not installed, the calling test skips and says why."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

BINARY = (
    ROOT / ".venv" / "sarif-multitool" / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "Sarif.Multitool"
)
CONFIG = ROOT / "tests" / "data" / "sarif" / "multitool.xml"  # SARIF2006 off: it fetches URIs over the network
SARIF_SCHEMA = ROOT / "tests" / "data" / "sarif" / "sarif-2.1.0-rtm.5.json"


def sarif_errors(document: object) -> list[str]:
    """Every violation of the SARIF 2.1.0 JSON Schema in ``document`` (draft-04, as the schema says)."""
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text())
    validator = jsonschema.Draft4Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def multitool() -> Path:
    """The validator's binary, or a skip naming what is missing and how to get it."""
    binary = Path(os.environ.get("SARIF_MULTITOOL", BINARY))
    if not os.access(binary, os.X_OK):
        pytest.skip(
            f"Microsoft's SARIF validator is not installed at {binary}: `make sarif-multitool` installs npm "
            "@microsoft/sarif-multitool-linux (its version pinned in the Makefile) with the venv's Node, "
            "or set SARIF_MULTITOOL to the binary"
        )
    return binary


def multitool_problems(document: object, folder: Path) -> list[str]:
    """Every error and warning the validator reports on ``document`` ("RULE: message"), GitHub's
    code-scanning rules (GHnnnn) included; a failed run of the tool itself fails the test."""
    binary = multitool()
    folder.mkdir(parents=True, exist_ok=True)
    log, out = folder / "input.sarif", folder / "validation.sarif"
    log.write_text(json.dumps(document, indent=2), encoding="utf-8")
    done = subprocess.run(
        [
            str(binary), "validate", str(log), "--output", str(out), "--log", "ForceOverwrite",
            "--rule-kind", "Sarif;Gh", "--level", "Error;Warning", "--config", str(CONFIG),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT": "1"},
        check=False,
    )  # fmt: skip
    assert out.exists(), f"the validator wrote no report (exit {done.returncode}): {done.stdout}{done.stderr}"
    (run,) = json.loads(out.read_text(encoding="utf-8-sig"))["runs"]
    failures = [
        n["message"]["text"]
        for invocation in run.get("invocations", [])
        for n in invocation.get("toolExecutionNotifications", [])
        if n.get("level") == "error"
    ]
    assert not failures, failures
    rules = run["tool"]["driver"].get("rules", [])
    return [f"{r['ruleId']}: {_text(r, rules)}" for r in run.get("results", [])]


def _text(result: dict, rules: list[dict]) -> str:
    """A result's message: its text, or the rule's message string with the arguments filled in."""
    message = result["message"]
    if "text" in message:
        return message["text"]
    rule = rules[result["ruleIndex"]] if "ruleIndex" in result else {}
    template = rule.get("messageStrings", {}).get(message.get("id"), {}).get("text", message.get("id", ""))
    for i, argument in enumerate(message.get("arguments", [])):
        template = template.replace(f"{{{i}}}", str(argument))
    return template
