"""A command whose output goes into a pipe that the reader closed (``modelcat verify | head -1``) ends
quietly: no "internal error: BrokenPipeError", nothing on stderr, a non-zero exit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow

NOW = "2026-11-27"
COMMANDS = [
    ["validate"],
    ["show", "--now", NOW],
    ["verify"],
    ["verify", "--format", "json"],
    ["status"],
    ["schema"],
    ["policy", "check", "--now", NOW],
    ["validate", "--catalog", "missing.yaml", "--format", "json"],  # the error report meets the closed pipe
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_closed_pipe_ends_the_command_quietly(workspace: Path, args: list[str]) -> None:
    shutil.copytree(ROOT / "policies", workspace / "policies")
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli.main", *args],
        cwd=workspace,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader goes away before the first line, as `| head -0` would
    stderr = process.stderr.read().decode()
    code = process.wait(timeout=300)
    assert stderr == "" and code != 0, (code, stderr)
