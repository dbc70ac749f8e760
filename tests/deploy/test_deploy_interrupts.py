"""End to end through the ``modelcat`` command line (issue #5): Ctrl-C during an apply, and two
applies at once. Each test has a project of its own that nothing has applied yet.

To be sure the apply is in the middle of creating endpoints when the test acts, the first replica
it starts is frozen (SIGSTOP) until the test has done so: it cannot listen yet, so its endpoint
cannot be created, as with a replica that is slow to load its model.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from catalog.provider.processes import is_alive
from tests.deploy.project import Project, output
from tests.onnx_models import dense_model, save

pytestmark = pytest.mark.slow


def test_ctrl_c_during_apply_exits_130_and_a_rerun_converges_leaving_no_orphan(fresh_project: Project) -> None:
    project = fresh_project
    apply = project.start("apply", "--auto-approve")
    project.freeze_replica()
    apply.wait_for("Creating...")
    apply.interrupt()
    apply.wait_for("Interrupt received")
    time.sleep(1.0)  # Terraform has asked the provider to stop; the endpoint is still being created
    project.thaw()
    code = apply.finish(timeout=150)
    assert code == 130, apply.text
    assert "interrupted" in apply.text and "Plugin did not respond" not in apply.text, apply.text

    seen = {ident for ident, _ in project.serving()}
    recorded = {ident for ident, _ in project.recorded()}
    assert seen <= recorded, f"processes no run record lists: {seen - recorded}\n{apply.text}"

    rerun = project.run("apply", "--auto-approve")
    assert rerun.returncode == 0, output(rerun)
    # the endpoints in flight were finished and kept in the state: only the router and Prometheus
    # (which waits for the routers) are left to start
    assert "production-local: 2 added, 0 changed, 0 destroyed" in rerun.stdout, output(rerun)
    status = project.status()
    assert status["consistent"], status["drift"]
    assert not [e for a in status["applications"] for e in a["endpoints"] if e["deposed"]]
    seen |= {ident for ident, _ in project.serving()}

    project.ok("destroy", "--auto-approve")
    assert not project.serving(), project.serving()
    assert not [ident for ident in seen if is_alive(ident)]


def test_a_second_apply_while_the_first_creates_fails_on_the_state_lock(fresh_project: Project) -> None:
    project = fresh_project
    first = project.start("apply", "--auto-approve")
    project.freeze_replica()
    try:
        first.wait_for("Creating...")
        second = project.run("apply", "--auto-approve", timeout=120)
    finally:
        project.thaw()
    assert second.returncode == 2, output(second)
    assert "Error acquiring the state lock" in second.stdout + second.stderr, output(second)

    assert first.finish(timeout=150) == 0, first.text
    assert "production-local: 4 added, 0 changed, 0 destroyed" in first.text, first.text
    status = project.status()
    assert status["consistent"], status["drift"]


def test_destroy_stops_what_a_double_ctrl_c_during_a_replacement_left_running(
    fresh_project: Project, tmp_path: Path
) -> None:
    """Two Ctrl-C while new replicas replace old ones: Terraform exits at once, its state behind
    the run records. Status counts what it lost track of as drift; destroy stops every process
    the run records list, replaced ones included."""
    project = fresh_project
    project.ok("apply", "--auto-approve")
    before = {ident for ident, _ in project.serving()}
    project.replace_artifact("1.4.0", save(dense_model(seed=1405), tmp_path / "retrained.onnx"))
    apply = project.start("apply", "--auto-approve")
    project.freeze_replica(besides=before)  # the replacement is being created when Ctrl-C comes
    apply.wait_for("Creating...")
    apply.interrupt()
    apply.wait_for("Interrupt received")
    apply.interrupt()
    assert apply.finish(timeout=150) == 130, apply.text
    assert "Two interrupts received" in apply.text and "exited at once" in apply.text, apply.text
    project.thaw()
    assert project.wait_until_commands_end(), "the provider still runs"

    seen = {ident for ident, _ in project.serving()}
    recorded = {ident for ident, _ in project.recorded()}
    assert seen <= recorded, f"processes no run record lists: {seen - recorded}\n{apply.text}"
    assert seen - before, "no replica of the new bytes started"
    status = project.status(codes=(1,))
    assert any("still runs" in line for line in status["drift"]), status["drift"]
    [stack] = status["stacks"]
    assert {p["pid"] for x in stack["leftovers"] for p in x["processes"]} <= {i.pid for i in seen}

    destroyed = project.ok("destroy", "--auto-approve")
    assert not project.serving(), f"{project.serving()}\n{output(destroyed)}"
    assert not [ident for ident in seen | before if is_alive(ident)]
    assert project.recorded() == []
    assert project.ok("destroy", "--auto-approve").stdout.splitlines()[-1] == "nothing to destroy"
