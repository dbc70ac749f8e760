"""Rego inputs from synthesized Terraform JSON (``cdktf.out/stacks/*/cdk.tf.json``): one per block.

Each resource, data source and provider configuration (and the terraform, variable, output and
locals sections as one block each) becomes a small input listing its string leaves with their
path, key and, for ``{name, value}`` pairs such as container env vars, the sibling name. Rules
then look for literal secrets without walking the whole stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from catalog.errors import UsageError
from catalog.policy.findings import SubjectInput

__all__ = ["block_inputs", "synth_inputs"]


def _leaves(node: object, path: str, key: str, name: str) -> Iterator[dict[str, object]]:
    if isinstance(node, dict):
        sibling = named if isinstance(named := node.get("name"), str) else ""
        for k, v in node.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k), str(k), sibling if k != "name" else "")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{path}[{i}]", key, name)
    elif isinstance(node, str):
        yield {"path": path, "key": key, "name": name, "value": node}


def _blocks(document: dict[str, object]) -> Iterator[tuple[str, list[str], object]]:
    """(address, JSON key path to find its line, body) per block."""
    for section, content in document.items():
        if section == "//":
            continue
        if section in ("resource", "data") and isinstance(content, dict):
            for rtype, named in content.items():
                if not isinstance(named, dict):
                    continue
                for name, body in named.items():
                    prefix = "data." if section == "data" else ""
                    yield f"{prefix}{rtype}.{name}", [section, rtype, name], body
        elif section == "provider" and isinstance(content, dict):
            for pname, configs in content.items():
                for i, body in enumerate(configs if isinstance(configs, list) else [configs]):
                    yield f"provider.{pname}[{i}]", [section, pname], body
        else:
            yield section, [section], content


def _line_of(lines: list[str], keys: list[str]) -> int:
    """Line of the last key of ``keys``, each searched after the previous one (indent-2 JSON)."""
    start = 0
    for key in keys:
        needle = json.dumps(key) + ":"
        for n in range(start, len(lines)):
            if lines[n].lstrip().startswith(needle):
                start = n
                break
        else:
            return start + 1
    return start + 1


def block_inputs(stack: str, document: dict[str, object], file: str = "", text: str = "") -> list[SubjectInput]:
    lines = text.splitlines()
    inputs = []
    for address, keys, body in _blocks(document):
        subject = f"resource/{stack}/{address}"
        doc: dict[str, object] = {
            "kind": "resource",
            "subject": subject,
            "stack": stack,
            "address": address,
            "strings": list(_leaves(body, "", "", "")),
        }
        inputs.append(SubjectInput("resource", subject, doc, (), file, _line_of(lines, keys) if lines else 0))
    return inputs


def synth_inputs(synth_dir: Path) -> list[SubjectInput]:
    """Inputs for every ``stacks/<stack>/cdk.tf.json`` under ``synth_dir`` (a cdktf.out folder)."""
    stacks = sorted(synth_dir.glob("stacks/*/cdk.tf.json"))
    if not synth_dir.is_dir():
        raise UsageError(f"--synth-dir {synth_dir}: no such folder (run 'modelcat synth --out {synth_dir}' first)")
    if not stacks:
        raise UsageError(f"--synth-dir {synth_dir}: no stacks/*/cdk.tf.json in it (run 'modelcat synth' first)")
    inputs: list[SubjectInput] = []
    for path in stacks:
        try:
            text = path.read_text(encoding="utf-8")
            document = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UsageError(f"{path}: cannot read synthesized JSON: {e}") from e
        if not isinstance(document, dict):
            raise UsageError(f"{path}: not a Terraform JSON object")
        inputs += block_inputs(path.parent.name, document, str(path), text)
    return inputs
