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
from tests.helpers import ROOT, sha256_file


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
    import catalog.files as rt
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# --- item 8: writers never lose an update (one lock across read-modify-write) ---

_APPS = "".join(
    f"\n  - name: app-{i}\n    owner: team@example.com\n    environment: production\n    bindings:\n"
    f"      - model: fraud-scorer\n        routes:\n          - {{version: 1.3.0, weight: 100}}\n"
    for i in range(10)
)


def _modelcat(*args: object) -> list[str]:
    return [sys.executable, "-m", "catalog.cli.main", *map(str, args)]


@pytest.mark.slow
def test_writers_never_lose_an_update(workspace: Path):
    """20 concurrent CLI processes, 10 `bind` and 10 `register`, on one models.yaml: every change lands."""
    from tests.onnx_models import dense_model, save

    catalog = workspace / "models.yaml"
    catalog.write_text(catalog.read_text() + _APPS)
    assert validate_file(catalog).ok
    binds = {
        i: _modelcat(
            "bind",
            f"app-{i}",
            "fraud-scorer",
            "--route",
            f"1.3.0={99 - i}",
            "--route",
            f"1.4.0={i + 1}",
            "--catalog",
            catalog,
        )
        for i in range(10)
    }
    registers = {
        i: _modelcat(
            "register",
            "fraud-scorer",
            "--version",
            f"1.{5 + i}.0",
            "--artifact",
            save(dense_model(seed=500 + i), workspace / "new" / f"m{i}.onnx"),
            "--trained-at",
            "2026-11-20",
            "--catalog",
            catalog,
        )
        for i in range(10)
    }
    env = {**os.environ, "MODELCAT_LOCK_TIMEOUT": "600"}  # generous: a loaded 2-core CI machine
    procs = [
        (kind, i, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
        for kind, commands in (("bind", binds), ("register", registers))
        for i, command in commands.items()
    ]
    outcomes = [(kind, i, proc.wait(timeout=900), proc.communicate()[1]) for kind, i, proc in procs]
    failed = [(kind, i, code, err) for kind, i, code, err in outcomes if code != 0]
    assert failed == []
    report = validate_file(catalog)
    assert report.ok, report.problems
    apps = {a.name: a for a in report.catalog.applications}
    for i in range(10):
        routes = apps[f"app-{i}"].bindings[0].routes
        assert [(r.version, r.weight) for r in routes] == [("1.3.0", 99 - i), ("1.4.0", i + 1)], f"bind app-{i} lost"
    versions = {v.version for m in report.catalog.models if m.name == "fraud-scorer" for v in m.versions}
    assert {f"1.{5 + i}.0" for i in range(10)} <= versions, "a registered version was lost"
    assert [p.name for p in workspace.iterdir() if p.name.startswith(".models.yaml")] == []  # no lock, no temp


@pytest.mark.slow
def test_a_second_writer_gives_up_naming_the_holder(demo_copy: Path):
    """While another process holds the lock, bind waits MODELCAT_LOCK_TIMEOUT seconds, then exits 2."""
    from catalog.editing import locked_catalog

    before = demo_copy.read_bytes()
    bind = _modelcat("bind", "checkout", "fraud-scorer", "--route", "1.3.0=50", "--route", "1.4.0=50")
    env = {**os.environ, "MODELCAT_LOCK_TIMEOUT": "0"}
    with locked_catalog(demo_copy):
        text, json_run = (
            subprocess.run([*bind, *extra], check=False, capture_output=True, text=True, env=env, timeout=120)
            for extra in (["--catalog", demo_copy], ["--catalog", demo_copy, "--format", "json"])
        )
    assert text.returncode == 2, text.stderr
    assert f"another modelcat is writing {demo_copy} (pid {os.getpid()}); try again" in text.stderr
    assert json_run.returncode == 2 and f"(pid {os.getpid()})" in json_run.stdout
    assert demo_copy.read_bytes() == before
    assert not (demo_copy.parent / ".models.yaml.lock").exists()  # removed by the holder on release


def test_a_second_writer_waits_for_the_first(demo_copy: Path, monkeypatch: pytest.MonkeyPatch):
    """The second writer is blocked while the first holds the lock, then makes its change on the new file."""
    import threading

    from catalog import filelock
    from catalog.editing import locked_catalog

    refused_once = threading.Event()
    real_try_lock = filelock.try_lock

    def observed(path: Path, **kwargs: bool) -> int | None:
        fd = real_try_lock(path, **kwargs)
        if fd is None:
            refused_once.set()
        return fd

    monkeypatch.setattr(filelock, "try_lock", observed)
    outcome: list[object] = []
    with locked_catalog(demo_copy) as first:
        waiter = threading.Thread(
            target=lambda: outcome.append(bind_routes(demo_copy, "checkout", "fraud-scorer", [("1.3.0", 100)]))
        )
        waiter.start()
        assert refused_once.wait(timeout=120)
        first.write(first.original.replace(b"Card checkout;", b"Card checkout (edited first);"))
    waiter.join(timeout=120)
    assert len(outcome) == 1 and outcome[0].changed
    text = demo_copy.read_text()
    assert "Card checkout (edited first);" in text and "- {version: 1.3.0, weight: 100}" in text


def test_an_edit_made_meanwhile_by_another_program_is_not_overwritten(demo_copy: Path, monkeypatch: pytest.MonkeyPatch):
    """An editor (which takes no lock) saves while bind works: bind refuses, the editor's text stays."""
    import catalog.editing

    edited = demo_copy.read_text().replace("Card checkout;", "Card checkout (saved in an editor);")
    real_validate = catalog.editing.validate_bytes

    def editor_saves_meanwhile(data: bytes, filename: str):
        demo_copy.write_text(edited)
        return real_validate(data, filename)

    monkeypatch.setattr(catalog.editing, "validate_bytes", editor_saves_meanwhile)
    with pytest.raises(EditRefused, match="changed on disk while it was being edited"):
        bind_routes(demo_copy, "checkout", "fraud-scorer", [("1.3.0", 100)])
    assert demo_copy.read_text() == edited
    assert sorted(p.name for p in demo_copy.parent.iterdir()) == ["keys", "models.yaml"]  # the demo copy, no leftovers


def test_routes_edited_sets_and_removes_a_bindings_mirror_and_writes_nothing(demo_copy: Path) -> None:
    from catalog.editing import locked_catalog, routes_edited
    from catalog.validate import validate_bytes

    path = demo_copy
    original = path.read_bytes()
    with locked_catalog(path) as catalog:
        text, _ = routes_edited(catalog, "checkout", "fraud-scorer", [("1.3.0", 100), ("1.4.0", 0)], ("1.4.0", 20))
        mirrored = validate_bytes(text.encode(), str(path)).catalog
        assert mirrored is not None
        binding = next(b for a in mirrored.applications for b in a.bindings if b.model == "fraud-scorer")
        assert binding.mirror is not None and (binding.mirror.version, binding.mirror.percent) == ("1.4.0", 20)
        assert [(r.version, r.weight) for r in binding.routes] == [("1.3.0", 100), ("1.4.0", 0)]
    assert path.read_bytes() == original
    path.write_text(text)
    with locked_catalog(path) as catalog:
        kept, _ = routes_edited(catalog, "checkout", "fraud-scorer", [("1.3.0", 100), ("1.4.0", 0)])
        assert "mirror: {version: 1.4.0, percent: 20}" in kept
        removed, _ = routes_edited(catalog, "checkout", "fraud-scorer", [("1.3.0", 90), ("1.4.0", 10)], None)
        assert "mirror: {" not in removed
