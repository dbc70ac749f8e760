"""``make setup`` (the first step of ``make demo``) says what it does, one line per step, and lets
pip show its own progress on a terminal; in a log (CI) pip stays quiet. Run with a stand-in Python
that records how pip is called, so nothing is installed."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

FAKE_PYTHON = """#!/bin/sh
# A stand-in interpreter: the version check passes, `-m venv DIR` puts a copy of this script at
# DIR/bin/python, `-m pip ...` records its arguments and says it ran.
case "$1" in
  -c) exit 0 ;;
  -m) if [ "$2" = venv ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi
      shift; echo "$*" >> "$PIP_CALLS"; echo "(pip ran)"; exit 0 ;;
esac
exit 3
"""
STEPS = ["setup 1/3: creating the virtual environment", "setup 2/3: upgrading pip", "setup 3/3: installing modelcat"]


def _setup(tmp_path: Path, on_a_terminal: bool) -> tuple[list[str], list[str]]:
    """(make's output lines, pip's argument lines) of ``make setup`` into a fresh venv folder."""
    tmp_path.mkdir()
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    calls = tmp_path / "pip-calls"
    calls.touch()
    command = [
        "make",
        "--no-print-directory",
        "-C",
        str(ROOT),
        "setup",
        f"VENV={tmp_path / 'venv'}",
        f"PYTHON={python}",
    ]
    env = {**os.environ, "PIP_CALLS": str(calls)}
    if on_a_terminal:
        leader, follower = pty.openpty()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        output = b"".join(chunks).decode().replace("\r\n", "\n")
        assert process.wait(timeout=120) == 0, output
    else:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        output = done.stdout + done.stderr
    return output.splitlines(), calls.read_text().splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_setup_shows_progress_a_line_per_step_and_pip_on_a_terminal(tmp_path: Path) -> None:
    lines, pip_calls = _setup(tmp_path / "log", on_a_terminal=False)
    said = [next((i for i, line in enumerate(lines) if line.startswith(step)), -1) for step in STEPS]
    assert -1 not in said and said == sorted(said), lines
    ran = [i for i, line in enumerate(lines) if line == "(pip ran)"]
    assert len(ran) == 2 and said[1] < ran[0] < said[2] < ran[1], lines  # each step is said before it runs
    assert len(pip_calls) == 2 and all("--quiet" in call.split() for call in pip_calls), pip_calls
    assert lines[-1].startswith("setup: done"), lines

    lines, pip_calls = _setup(tmp_path / "tty", on_a_terminal=True)
    assert all(any(line.startswith(step) for line in lines) for step in STEPS), lines
    assert len(pip_calls) == 2 and not any("--quiet" in call.split() for call in pip_calls), pip_calls
    assert any("-c constraints.txt -e .[dev]" in call for call in pip_calls), pip_calls


FAKE_SUDO = """#!/bin/sh
# Stands in for sudo: records the command it was given instead of running it.
echo "$*" >> "$SUDO_CALLS"
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_system_deps_installs_prometheus_where_it_is_missing(tmp_path: Path) -> None:
    sudo = tmp_path / "sudo"
    sudo.write_text(FAKE_SUDO)
    sudo.chmod(0o755)
    calls = tmp_path / "sudo-calls"
    present = tmp_path / "docker-registry"
    present.write_text("")
    present.chmod(0o755)
    deps = f"{present}:docker-registry {tmp_path / 'absent' / 'prometheus'}:prometheus"
    command = ["make", "--no-print-directory", "-C", str(ROOT), "system-deps", f"SUDO={sudo}", f"SYSTEM_DEPS={deps}"]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "SUDO_CALLS": str(calls)}, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    install = [line for line in calls.read_text().splitlines() if " install " in f" {line} "]
    assert len(install) == 1 and install[0].split()[-1] == "prometheus", calls.read_text()
    assert "docker-registry" not in install[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_system_deps_names_prometheus_and_make_demo_and_test_depend_on_it() -> None:
    database = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "-p", "-n", "-q", "system-deps"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    rules = {
        line.split(":", 1)[0]: line.split(":", 1)[1].split()
        for line in database.splitlines()
        if line.split(":", 1)[0] in ("demo", "test") and not line.startswith("#")
    }
    assert "system-deps" in rules["demo"] and "system-deps" in rules["test"], rules
    assert "/usr/bin/prometheus:prometheus" in database
