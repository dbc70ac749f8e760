"""The controller's loop and lock, on a real git repository with an explicit clock (no stack runs)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from catalog.rollout import decisions
from catalog.rollout.controller import RunOptions, controller_lock, run
from catalog.rollout.decisions import Delivery
from catalog.rollout.record import read_state
from catalog.rollout.step_analysis import StepAnalysis
from tests.rollout.conftest import linear
from tests.rollout.test_decisions import holds, passes, routes, state_of, trailers

T0 = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when the loop sleeps: the waits it asked for, in order."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.waits: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_the_loop_steps_to_the_end_waiting_for_each_bake_and_never_past_it(rollout_repo) -> None:
    repo = rollout_repo(linear(30))
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    clock, said = FakeClock(T0 + timedelta(seconds=5)), []
    ended = run(repo.catalog, RunOptions("checkout", None, poll_seconds=60, actor="ctl"), said.append,
                clock=clock, sleep=clock.sleep, analyse=passes)  # fmt: skip
    assert ended.why == "done" and ended.status == "promoted"
    assert [d.decision.decision for d in ended.decisions] == ["step", "step", "promote"]
    assert clock.waits == [25, 30, 30]  # the bake left each time, not the 60 s poll
    assert routes(repo) == [("1.4.0", 100)] and trailers(repo)["Decided-By"] == "ctl"


def test_a_held_rollout_aborts_after_its_progress_deadline_with_that_reason(rollout_repo) -> None:
    block = linear(10, extra="          progress_deadline_seconds: 120\n")
    repo = rollout_repo(block)
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    clock = FakeClock(T0)
    ended = run(repo.catalog, RunOptions("checkout", None, poll_seconds=50, actor="ctl"), lambda line: None,
                clock=clock, sleep=clock.sleep, analyse=holds)  # fmt: skip
    assert ended.status == "aborted"
    kinds = [d.decision.decision for d in ended.decisions]
    assert kinds == ["hold", "abort"]  # one hold committed, not one per poll
    assert clock.now - T0 >= timedelta(seconds=130)
    last = read_state(repo.catalog, "checkout", "fraud-scorer").record.last  # type: ignore[union-attr]
    assert "held past the progress deadline (120 s)" in last.reason
    assert routes(repo) == [("1.3.0", 90), ("1.4.0", 10)]


def test_until_step_stops_after_one_change_and_a_new_run_goes_on_from_git(rollout_repo) -> None:
    repo = rollout_repo(linear(1))
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    clock = FakeClock(T0 + timedelta(seconds=2))
    options = RunOptions("checkout", "fraud-scorer", until="step", actor="ctl")
    first = run(repo.catalog, options, lambda line: None, clock=clock, sleep=clock.sleep, analyse=passes)
    assert first.why == "step" and routes(repo)[-1] == ("1.4.0", 50)
    clock.now += timedelta(seconds=2)
    second = run(repo.catalog, options, lambda line: None, clock=clock, sleep=clock.sleep, analyse=passes)
    assert second.why == "step" and routes(repo)[-1] == ("1.4.0", 75)
    assert [d.decision for d in state_of(repo).record.decisions] == ["start", "step", "step"]  # type: ignore[union-attr]


def test_max_seconds_bounds_the_loop(rollout_repo) -> None:
    repo = rollout_repo(linear(1))
    decisions.start(state_of(repo), "1.4.0", "tester", decisions.now_utc(), Delivery())  # the loop's own clock
    said: list[str] = []
    ended = run(repo.catalog, RunOptions("checkout", None, max_seconds=0.5, poll_seconds=0.05, actor="ctl"),
                said.append, analyse=lambda s, n: StepAnalysis(None, "metrics source down"))  # fmt: skip
    assert ended.why == "time" and ended.status == "running"
    assert said[-1] == "stopping after 0.5 s (--max-seconds): run again to go on from git"


def test_a_second_controller_exits_2_naming_the_first(rollout_repo, cli) -> None:
    repo = rollout_repo(linear(1))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    head = repo.git("rev-parse", "HEAD")
    with controller_lock(repo.catalog, "checkout", "fraud-scorer", "modelcat rollout run checkout --apply"):
        done = cli("rollout", "run", "checkout", "--format", "json")
    assert done.exit_code == 2
    said = json.loads(done.output)
    assert said["ok"] is False and said["error"]["code"] == "rollout_locked"
    assert f"pid {os.getpid()}: modelcat rollout run checkout --apply" in said["error"]["message"]
    assert repo.git("rev-parse", "HEAD") == head
    lock = repo.root / ".modelcat" / "rollouts" / "checkout.fraud-scorer.lock"
    assert not lock.exists()  # released (and removed) when the first controller ended


def test_run_without_a_rollout_says_how_to_start_one(rollout_repo, cli) -> None:
    rollout_repo()
    done = cli("rollout", "run", "checkout", "--max-seconds", "1")
    assert done.exit_code == 1 and "no rollout of checkout/fraud-scorer: start one" in done.output


def test_status_says_where_the_rollout_stands(rollout_repo, cli) -> None:
    repo = rollout_repo(linear(600))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    doc = json.loads(cli("rollout", "status", "checkout", "--format", "json").output)
    r = doc["rollout"]
    assert (r["status"], r["step"], r["steps"], r["percent"]) == ("running", 1, 4, 25)
    assert 590 <= r["bake_left_seconds"] <= 600 and r["last_decision"]["decision"] == "start"
    assert doc["routers"]["agree"] is False and "not applied" in doc["routers"]["detail"]
    text = cli("rollout", "status", "checkout").output
    assert "step 1 of 4 (25 % on 1.4.0" in text and "routes: 1.3.0 75 %, 1.4.0 25 %" in text
    assert repo.git("status", "--porcelain") == ""


def test_a_run_on_a_branch_stops_after_a_decision_that_moves_the_routes(rollout_repo, tmp_path) -> None:
    repo = rollout_repo(linear(1))
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    head, said = repo.git("rev-parse", "HEAD"), []
    clock = FakeClock(T0 + timedelta(seconds=2))
    pr = tmp_path / "pr.md"
    options = RunOptions("checkout", None, actor="ctl", delivery=Delivery("rollout-step-2", pr))
    ended = run(repo.catalog, options, said.append, clock=clock, sleep=clock.sleep, analyse=passes)
    assert ended.why == "branch" and said[-1] == "committed to rollout-step-2: merge the pull request, then run again"
    assert repo.git("rev-parse", "HEAD") == head and routes(repo) == [("1.3.0", 75), ("1.4.0", 25)]
    assert routes(repo, "rollout-step-2") == [("1.3.0", 50), ("1.4.0", 50)]
    assert "the analysis passes: 50 %" in pr.read_text(encoding="utf-8")
