"""`modelcat bind`: minimal round-trip diffs, refusals that write nothing, crash safety."""

from __future__ import annotations

import difflib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from catalog.editing import bind_routes
from catalog.errors import EditRefused
from catalog.validate import validate_file
from tests.conftest import ROOT, sha256_file


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_bind_changes_only_the_route_lines(cli, demo_copy: Path):
    before = demo_copy.read_text()
    result = cli(
        "bind", "checkout", "fraud-scorer", "--route", "1.3.0=80", "--route", "1.4.0=20", "--catalog", demo_copy
    )
    assert result.exit_code == 0, result.output
    assert "1.3.0=90%, 1.4.0=10% -> 1.3.0=80%, 1.4.0=20%" in result.stdout
    assert changed_lines(before, demo_copy.read_text()) == [
        "-          - {version: 1.3.0, weight: 90}",
        "-          - {version: 1.4.0, weight: 10}",
        "+          - {version: 1.3.0, weight: 80}",
        "+          - {version: 1.4.0, weight: 20}",
    ]
    assert "# canary: 10 % of shoppers on 1.4.0" in demo_copy.read_text()  # comments survive
    routes = validate_file(demo_copy).catalog.applications[0].bindings[0].routes
    assert [(r.version, r.weight) for r in routes] == [("1.3.0", 80), ("1.4.0", 20)]


def test_bind_adds_a_binding_in_the_style_of_its_neighbours(demo_copy: Path):
    before = demo_copy.read_text()
    result = bind_routes(demo_copy, "retention-campaigns", "fraud-scorer", [("1.3.0", 100)])
    assert result.before == () and result.changed
    assert changed_lines(before, demo_copy.read_text()) == [
        "+      - model: fraud-scorer",
        "+        routes:",
        "+          - {version: 1.3.0, weight: 100}",
    ]


def test_bind_keeps_block_style_routes_block(write):
    path = write(
        (ROOT / "tests" / "data" / "minimal.yaml")
        .read_text()
        .replace(
            "          - {version: 1.0.0, weight: 90}\n          - {version: 1.1.0, weight: 10}\n",
            "          - version: 1.0.0 # stable\n            weight: 90\n          - version: 1.1.0\n            weight: 10\n",
        )
    )
    before = path.read_text()
    bind_routes(path, "checkout", "fraud-scorer", [("1.0.0", 50), ("1.1.0", 50)])
    assert changed_lines(before, path.read_text()) == [
        "-            weight: 90",
        "+            weight: 50",
        "-            weight: 10",
        "+            weight: 50",
    ]
    assert "- version: 1.0.0 # stable" in path.read_text()


def test_rebinding_the_same_routes_does_not_touch_the_file(demo_copy: Path):
    mtime = demo_copy.stat().st_mtime_ns
    result = bind_routes(demo_copy, "checkout", "fraud-scorer", [("1.3.0", 90), ("1.4.0", 10)])
    assert not result.changed
    assert demo_copy.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["checkout", "fraud-scorer", "--route", "1.3.0=90", "--route", "1.4.0=9"], 1, "route weights add up to 99"),
        (["checkout", "fraud-scorer", "--route", "1.9.0=100"], 1, "has no version 1.9.0"),
        (["checkout", "fraud-scorer", "--route", "1.2.0=100"], 0, ""),  # deprecated: a warning only
        (["retention-campaigns", "churn-predictor", "--route", "0.9.0=100"], 1, "is retired"),
        (["checkout", "no-such-model", "--route", "1.0.0=100"], 1, "'no-such-model' is not in the catalog"),
        (["nowhere", "fraud-scorer", "--route", "1.3.0=100"], 1, "no application 'nowhere'"),
        (["checkout", "fraud-scorer", "--route", "1.3.0=ninety"], 2, "VERSION=WEIGHT"),
        (["checkout", "fraud-scorer", "--route", "1.3.0=50.5"], 2, "VERSION=WEIGHT"),
    ],
)
def test_bind_refusals_leave_the_file_untouched(cli, demo_copy: Path, args, code, words):
    before = sha256_file(demo_copy)
    result = cli("bind", *args, "--catalog", demo_copy)
    assert result.exit_code == code, result.output
    if code:
        assert words in result.stderr
        assert sha256_file(demo_copy) == before
    assert not [p for p in demo_copy.parent.iterdir() if p.name.endswith(".tmp")]


def test_bind_refuses_a_catalog_with_a_syntax_error(write):
    path = write("apiVersion: modelcat/v1\nmodels: [\n")
    with pytest.raises(EditRefused):
        bind_routes(path, "checkout", "fraud-scorer", [("1.0.0", 100)])
    assert path.read_text() == "apiVersion: modelcat/v1\nmodels: [\n"


def test_bind_keeps_the_file_mode(demo_copy: Path):
    os.chmod(demo_copy, 0o640)
    bind_routes(demo_copy, "checkout", "fraud-scorer", [("1.3.0", 50), ("1.4.0", 50)])
    assert demo_copy.stat().st_mode & 0o777 == 0o640


# --- crash safety: SIGKILL at every step of the write, and at random moments ---

_KILL_AT = textwrap.dedent(
    """
    import os, signal, sys
    import catalog.yamlio.roundtrip as rt
    point = sys.argv[1]
    real = {"fsync": os.fsync, "replace": os.replace, "write": os.fdopen}
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    if point == "before-fsync":
        rt.os.fsync = die
    elif point == "before-replace":
        rt.os.replace = die
    elif point == "after-replace":
        def replace_then_die(src, dst):
            real["replace"](src, dst)
            die()
        rt.os.replace = replace_then_die
    from catalog.cli.main import main
    sys.argv = ["modelcat", "bind", "checkout", "fraud-scorer", "--route", "1.3.0=70", "--route", "1.4.0=30",
                "--catalog", sys.argv[2]]
    main()
    """
)


@pytest.mark.parametrize(
    ("point", "expect_new"), [("before-fsync", False), ("before-replace", False), ("after-replace", True)]
)
def test_kill_during_bind_leaves_old_or_new_file(demo_copy: Path, point: str, expect_new: bool):
    old = demo_copy.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_AT, point, str(demo_copy)], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    now = demo_copy.read_bytes()
    if expect_new:
        assert now != old and b"{version: 1.4.0, weight: 30}" in now
    else:
        assert now == old
    assert validate_file(demo_copy).ok


def test_kill_at_random_moments_never_leaves_a_partial_file(demo_copy: Path):
    old = demo_copy.read_bytes()
    bind = [
        sys.executable,
        "-m",
        "catalog.cli.main",
        "bind",
        "checkout",
        "fraud-scorer",
        "--route",
        "1.3.0=70",
        "--route",
        "1.4.0=30",
        "--catalog",
        str(demo_copy),
    ]
    start = time.perf_counter()
    subprocess.run(bind, check=True, capture_output=True, timeout=60)
    full = time.perf_counter() - start
    new = demo_copy.read_bytes()
    assert new != old
    rng = random.Random(20261127)
    for _ in range(12):
        demo_copy.write_bytes(old)
        proc = subprocess.Popen(bind, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 1.1) * full)
        proc.kill()
        proc.wait(timeout=30)
        content = demo_copy.read_bytes()
        assert content in (old, new), "a killed bind left a partial models.yaml"
    assert validate_file(demo_copy).ok
