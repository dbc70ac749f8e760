"""Golden files of synthesized stacks (normalized JSON, ``MODELCAT_UPDATE_GOLDEN=1`` rewrites them)
and the byte-identity of synth across runs and checkouts, shared by the target tests."""

from __future__ import annotations

import difflib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from catalog.synth import synthesize
from catalog.validate import load_catalog
from tests.helpers import DEMO, with_demo_keys

UPDATE = os.environ.get("MODELCAT_UPDATE_GOLDEN") == "1"


def normalized(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def check_golden(path: Path, document: Any) -> None:
    """``document`` equals the golden file at ``path`` (or rewrites it when updating)."""
    actual = normalized(document)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(path), "synthesized")
        )
        pytest.fail(f"{path.stem} differs from its golden file (MODELCAT_UPDATE_GOLDEN=1 to accept):\n{diff[:6000]}")


def synthesized_three_ways(tmp_path: Path, target: str, only: list[str] | None = None) -> list[bytes]:
    """The stacks' bytes from the demo catalog synthesized twice and once from another checkout."""
    other = tmp_path / "checkout"
    other.mkdir()
    shutil.copyfile(DEMO, other / "models.yaml")
    with_demo_keys(other)
    outputs = []
    for catalog, out in ((DEMO, tmp_path / "a"), (DEMO, tmp_path / "b"), (other / "models.yaml", tmp_path / "c")):
        result = synthesize(load_catalog(catalog), catalog, out, target=target, only=only)
        outputs.append(b"".join(stack.path.read_bytes() for stack in result.stacks))
    return outputs
