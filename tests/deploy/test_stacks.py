"""plan, apply, status and destroy cover every stack of the state directory, not only those the
catalog declares, and every process the run records list. Fast: a stack left behind is made of
Terraform's built-in ``terraform_data`` (no provider, nothing downloaded) and a run record naming a
``sleep`` process, so no replica or router has to start.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog.cli.main import main
from catalog.provider.processes import ProcessId, is_alive, start_time_of, stop_process
from catalog.provider.runstate import EndpointRecord, Instance, RunDir
from catalog.terraform import Workspace
from tests.deploy.project import DEMO, small_catalog
from tests.helpers import with_demo_keys

NO_APPLICATIONS = small_catalog()[: small_catalog().index("\napplications:") + 1] + "applications: []\n"


def modelcat(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--catalog", str(folder / "models.yaml")])
    return result.exit_code, result.output


@pytest.fixture
def sleeper() -> Iterator[ProcessId]:
    """A process standing in for a replica: it runs until stopped."""
    process = subprocess.Popen(["sleep", "600"], start_new_session=True)
    ident = ProcessId(process.pid, start_time_of(process.pid) or -1)
    yield ident
    stop_process(ident, drain=1.0)
    process.wait(10)


def record_replica(folder: Path, stack: str, ident: ProcessId, *, deposed: bool = False) -> EndpointRecord:
    """A run record of the endpoint checkout.fraud-scorer.1.4.0 whose one replica is ``ident``."""
    run = RunDir(folder / ".modelcat" / "run" / stack)
    record = EndpointRecord(
        "checkout.fraud-scorer.1.4.0", "fraud-scorer", "1.4.0", "sha256:" + "0" * 64, "artifact", "127.0.0.1",
        (Instance(ident.pid, ident.start_time, "http://127.0.0.1:9", ""),),
        labels={"modelcat/application": "checkout"},
    )  # fmt: skip
    written = run.write_endpoint(record)
    return run.depose_endpoint(written) if deposed else written


@pytest.fixture
def left_behind(tmp_path: Path, sleeper: ProcessId) -> Path:
    """A project whose catalog declares no application, with a stack ``legacy-local`` applied
    earlier: two resources in its Terraform state, and on record a process its state does not hold."""
    (tmp_path / "models.yaml").write_text(NO_APPLICATIONS, encoding="utf-8")
    with_demo_keys(tmp_path)
    workspace = Workspace("legacy-local", tmp_path / ".modelcat")
    resources = {f"r{i}": {"input": f"v{i}"} for i in range(2)}
    workspace.write_config(json.dumps({"resource": {"terraform_data": resources}}))
    assert workspace.apply().added == 2
    record_replica(tmp_path, "legacy-local", sleeper)
    return tmp_path


@pytest.mark.slow
def test_plan_apply_and_status_cover_a_stack_the_catalog_no_longer_declares(
    left_behind: Path, sleeper: ProcessId
) -> None:
    code, out = modelcat(left_behind, "plan", "--format", "json")
    assert code == 0, out
    [stack] = json.loads(out)["stacks"]
    assert (stack["stack"], stack["orphan"], stack["has_changes"]) == ("legacy-local", True, True), stack
    assert sorted(c["action"] for c in stack["changes"]) == ["delete", "delete"], stack
    assert [p["pid"] for x in stack["leftovers"] for p in x["processes"]] == [sleeper.pid], stack
    code, out = modelcat(left_behind, "plan", "--no-terraform-output")
    assert (
        "apply destroys it" in out
        and f"stop     checkout: fraud-scorer 1.4.0 endpoint: still runs (pid {sleeper.pid}" in out
    )

    code, out = modelcat(left_behind, "status")
    assert code == 1, out
    assert "legacy-local: no application of the catalog runs in legacy any more" in out, out
    assert f"pid {sleeper.pid}" in out and out.rstrip().endswith("verdict: INCONSISTENT (2 drift items)"), out

    code, out = modelcat(left_behind, "apply", "--auto-approve")
    assert code == 0, out
    lines = out.splitlines()
    start = lines.index("== legacy-local: destroying: the catalog no longer declares it (Terraform's output follows)")
    end = lines.index("legacy-local: 0 added, 0 changed, 2 destroyed; stopped 1 process an interrupted run left behind")
    assert start < end and all(line.startswith("  | ") for line in lines[start + 1 : end]), out  # headed stream
    assert not is_alive(sleeper)

    assert modelcat(left_behind, "status") == (0, "verdict: consistent\n")
    code, out = modelcat(left_behind, "plan")
    assert code == 0 and out.startswith("no stack: no application of the catalog runs"), out


@pytest.mark.slow
def test_plan_detailed_exitcode_is_0_without_changes_2_with_changes_1_on_an_error(left_behind: Path) -> None:
    code, out = modelcat(left_behind, "plan", "--detailed-exitcode")
    assert code == 2, out
    code, out = modelcat(left_behind, "plan", "--detailed-exitcode", "--format", "json")
    assert (code, json.loads(out)["ok"], json.loads(out)["error"]["code"]) == (2, False, "changes_pending"), out
    assert modelcat(left_behind, "plan", "--detailed-exitcode", "--env", "nosuch")[0] == 1
    assert modelcat(left_behind, "plan", "--env", "nosuch")[0] == 2  # without the flag: a usage error
    assert modelcat(left_behind, "apply", "--auto-approve")[0] == 0
    code, out = modelcat(left_behind, "plan", "--detailed-exitcode")
    assert code == 0, out


def test_status_smoke_and_destroy_refuse_an_unknown_environment_naming_the_known_ones(
    tmp_path: Path, sleeper: ProcessId
) -> None:
    (tmp_path / "models.yaml").write_text(small_catalog(), encoding="utf-8")  # checkout runs in production
    with_demo_keys(tmp_path)
    for command in (["status"], ["smoke"], ["destroy", "--auto-approve"]):
        code, out = modelcat(tmp_path, *command, "--env", "nosuch")
        assert code == 2, (command, out)
        assert "no application runs in environment nosuch; known: production" in out, (command, out)

    record_replica(tmp_path, "legacy-local", sleeper)  # a stack left in the state directory is known too
    code, out = modelcat(tmp_path, "status", "--env", "legacy")
    assert code == 1 and "legacy-local: no application of the catalog runs in legacy" in out, out
    assert "known: legacy, production" in modelcat(tmp_path, "status", "--env", "nosuch")[1]
    code, out = modelcat(tmp_path, "destroy", "--auto-approve", "--env", "legacy")
    assert code == 0, out
    assert "legacy-local: 0 destroyed; stopped 1 process Terraform had lost track of" in out, out
    assert not is_alive(sleeper)


def test_status_counts_a_replaced_replica_still_running_as_drift_and_destroy_stops_it(
    tmp_path: Path, sleeper: ProcessId
) -> None:
    (tmp_path / "models.yaml").write_text(small_catalog(), encoding="utf-8")
    with_demo_keys(tmp_path)
    record = record_replica(tmp_path, "production-local", sleeper, deposed=True)
    code, out = modelcat(tmp_path, "status", "--format", "json")
    assert code == 1, out
    status = json.loads(out)
    replaced = f"production-local: checkout: fraud-scorer 1.4.0 endpoint (replaced): still runs (pid {sleeper.pid}"
    assert [d for d in status["drift"] if d.startswith(replaced)], status["drift"]

    code, out = modelcat(tmp_path, "destroy", "--auto-approve")
    assert code == 0, out
    assert not is_alive(sleeper)
    assert not Path(record.file).exists()
    assert modelcat(tmp_path, "destroy", "--auto-approve") == (0, "nothing to destroy\n")


def test_status_prints_one_line_per_stack_when_nothing_is_deployed(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    with_demo_keys(tmp_path)
    code, out = modelcat(tmp_path, "status")
    assert code == 1
    assert out.splitlines() == [
        "production-local: not applied; run modelcat apply",
        "staging-local: not applied; run modelcat apply",
        "verdict: INCONSISTENT (2 drift items)",
    ]
