"""``--apply`` on the deciding commands, and ``rollout run --apply`` on a finished rollout: after the
commit, the controller's own path puts the catalog in force on the local target (the router's fast
switch, then Terraform). Here the switch and the apply are recorded instead of run (no stack);
tests/rollout/test_rollout_end_to_end.py runs them on a real one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalog.deploy.apply import Applied
from catalog.rollout import controller
from catalog.rollout.controller import RunOptions, run
from catalog.rollout.record import binding_routes, read_state
from catalog.rollout.switch import SwitchResult
from tests.rollout.conftest import linear
from tests.rollout.test_decisions import routes

BASE = (("1.3.0", 90), ("1.4.0", 10))  # the demo's checkout binding: what an abort restores


class Recorded:
    """The fast switch and Terraform's apply as the controller calls them, recorded in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def switch(self, catalog_path: Path, application: str, model: str, routes: Any, **options: Any) -> SwitchResult:
        self.calls.append(("switch", application, model, tuple(routes), options["mirror"], options["environment"]))
        return SwitchResult(True, "", tuple(routes), None, "0" * 64, 0.01)

    def apply(self, catalog_path: Path, watcher: Any, target: Any, only: Any, **options: Any) -> list[Applied]:
        applied = read_state(Path(catalog_path), "checkout", "fraud-scorer", "HEAD").binding  # what it applies
        self.calls.append(("apply", tuple(only), options.get("auto_approve"), binding_routes(applied)))
        return [Applied("production-local", changed=1)]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    calls = Recorded()
    monkeypatch.setattr(controller, "switch_routes", calls.switch)
    monkeypatch.setattr(controller, "apply_stacks", calls.apply)
    return calls


def test_abort_with_apply_switches_the_router_to_the_base_routes_then_applies(rollout_repo, cli, recorded) -> None:
    repo = rollout_repo(linear(600))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    assert recorded.calls == []  # without --apply a decision only commits
    done = cli("rollout", "abort", "checkout", "--apply", "--reason", "latency regression")
    assert done.exit_code == 0, done.output
    assert routes(repo) == list(BASE)
    assert recorded.calls == [
        ("switch", "checkout", "fraud-scorer", BASE, None, "production"),  # the mirror (none) set as well
        ("apply", ("production",), True, BASE),
    ]
    lines = done.output.splitlines()
    assert lines[0].startswith("rollout checkout/fraud-scorer 1.4.0: abort: back to 1.3.0 90 %, 1.4.0 10 % [")
    assert "switched the router to 1.3.0 90 %, 1.4.0 10 % in 0.01 s" in lines
    assert lines[-1] == "applied production-local: 0 added, 1 changed, 0 destroyed"


def test_start_and_promote_with_apply_put_each_decision_in_force(rollout_repo, cli, recorded) -> None:
    rollout_repo(linear(600))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0", "--apply").exit_code == 0
    assert cli("rollout", "promote", "checkout", "--force", "--apply", "--format", "json").exit_code == 0
    first, last = (("1.3.0", 75), ("1.4.0", 25)), (("1.4.0", 100),)
    assert recorded.calls == [
        ("switch", "checkout", "fraud-scorer", first, None, "production"),
        ("apply", ("production",), True, first),
        ("switch", "checkout", "fraud-scorer", last, None, "production"),
        ("apply", ("production",), True, last),
    ]


def test_apply_json_output_is_one_document_with_what_was_applied(rollout_repo, cli, recorded) -> None:
    import json

    rollout_repo(linear(600))
    done = cli("rollout", "start", "checkout", "--version", "1.4.0", "--apply", "--format", "json")
    said = json.loads(done.output)
    assert said["ok"] is True and said["decision"]["decision"] == "start"
    assert said["log"] == [
        "switched the router to 1.3.0 75 %, 1.4.0 25 % in 0.01 s",
        "applied production-local: 0 added, 1 changed, 0 destroyed",
    ]


def test_a_step_refused_with_apply_applies_nothing(rollout_repo, cli, recorded) -> None:
    repo = rollout_repo(linear(600))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    head = repo.git("rev-parse", "HEAD")
    done = cli("rollout", "step", "checkout", "--apply")
    assert done.exit_code == 1 and "not due" in done.output
    assert recorded.calls == [] and repo.git("rev-parse", "HEAD") == head


@pytest.mark.parametrize("command", [["start", "--version", "1.4.0"], ["abort"], ["promote", "--force"]])
def test_apply_with_branch_is_refused_before_anything_is_committed(rollout_repo, cli, recorded, command) -> None:
    repo = rollout_repo(linear(600))
    if command[0] != "start":
        assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    head = repo.git("rev-parse", "HEAD")
    done = cli("rollout", *command, "checkout", "--apply", "--branch", "by-pr")
    assert done.exit_code == 2, done.output
    assert "--apply with --branch: the merge of the pull request applies the decisions" in done.output
    assert repo.git("rev-parse", "HEAD") == head and repo.git("branch", "--list", "by-pr") == ""
    assert recorded.calls == []


def test_apply_on_another_target_is_refused_before_anything_is_committed(rollout_repo, cli, recorded) -> None:
    repo = rollout_repo(linear(600))
    text = repo.catalog.read_text(encoding="utf-8")
    local = "  - name: production\n    target: local\n"
    assert local in text
    repo.commit(text.replace(local, local.replace("local", "kubernetes")), "production on kubernetes", "k8s")
    head = repo.git("rev-parse", "HEAD")
    done = cli("rollout", "start", "checkout", "--version", "1.4.0", "--apply")
    assert done.exit_code == 1, done.output
    assert "--apply applies on the local target; production deploys elsewhere" in done.output
    assert repo.git("rev-parse", "HEAD") == head and recorded.calls == []


def test_run_apply_on_a_finished_rollout_applies_once_before_saying_it_is_finished(rollout_repo, cli, recorded) -> None:
    repo = rollout_repo(linear(600))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    assert cli("rollout", "abort", "checkout").exit_code == 0  # committed only
    head, said = repo.git("rev-parse", "HEAD"), []
    ended = run(repo.catalog, RunOptions("checkout", None, apply=True, actor="ctl"), said.append)
    assert (ended.why, ended.status, ended.decisions) == ("done", "aborted", ())
    assert recorded.calls == [
        ("switch", "checkout", "fraud-scorer", BASE, None, "production"),
        ("apply", ("production",), True, BASE),
    ]
    assert said[-1].startswith("rollout checkout.fraud-scorer.1.4.0.") and said[-1].endswith(" is aborted")
    assert said[:-1] == [
        "switched the router to 1.3.0 90 %, 1.4.0 10 % in 0.01 s",
        "applied production-local: 0 added, 1 changed, 0 destroyed",
    ]
    assert repo.git("rev-parse", "HEAD") == head
    unapplied = run(repo.catalog, RunOptions("checkout", None, actor="ctl"), said.append)
    assert unapplied.status == "aborted" and len(recorded.calls) == 2  # without --apply: nothing applied
