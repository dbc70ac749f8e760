"""The rollout record and its rule (catalog.domain.rollouts): pure, explicit times, no clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.domain.rollouts import (
    DecisionRecord,
    RolloutPolicy,
    RolloutRecord,
    decide_next,
    evidence_digest,
    first_step,
    routes_at,
    share_of,
)

T0 = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
BASE = (("1.3.0", 90), ("1.4.0", 10))
POLICY = RolloutPolicy(steps=(25, 50, 100), interval_seconds=60, progress_deadline_seconds=600)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def decision(kind: str, seconds: float, step: int, routes, reason: str = "", mirror=None) -> DecisionRecord:
    return DecisionRecord(kind, at(seconds), "test", step, tuple(routes), reason or kind, mirror)  # type: ignore[arg-type]


def record(*decisions: DecisionRecord, base=BASE) -> RolloutRecord:
    return RolloutRecord("checkout.fraud-scorer.1.4.0.x", "checkout", "fraud-scorer", "1.4.0", "production",
                         tuple(base), decisions)  # fmt: skip


def started(seconds: float = 0) -> RolloutRecord:
    return record(decision("start", seconds, 1, routes_at(BASE, "1.4.0", 25)))


def test_routes_at_moves_the_share_from_the_other_versions_in_proportion() -> None:
    assert routes_at(BASE, "1.4.0", 25) == (("1.3.0", 75), ("1.4.0", 25))
    assert routes_at((("a", 50), ("b", 50)), "c", 10) == (("a", 45), ("b", 45), ("c", 10))
    assert routes_at((("a", 2), ("b", 1)), "c", 50) == (("a", 33), ("b", 17), ("c", 50))
    assert routes_at(BASE, "1.4.0", 100) == (("1.4.0", 100),)
    with pytest.raises(ValueError, match="no traffic to a version other than"):
        routes_at((("1.4.0", 100),), "1.4.0", 50)


route_lists = st.lists(st.integers(0, 100), min_size=1, max_size=4).filter(lambda ws: sum(ws[:-1]) > 0 or len(ws) > 1)


@st.composite
def bases(draw: st.DrawFn) -> tuple[tuple[tuple[str, int], ...], str]:
    n = draw(st.integers(1, 4))
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1)))
    weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    base = tuple((f"1.{i}.0", w) for i, w in enumerate(weights))
    version = draw(st.sampled_from([*(v for v, _ in base), "9.0.0"]))
    if share_of(base, version) == 100:
        version = "9.0.0"
    return base, version


@st.composite
def step_lists(draw: st.DrawFn) -> tuple[int, ...]:
    inner = sorted(set(draw(st.lists(st.integers(1, 99), max_size=6))))
    return (*inner, 100)


@settings(max_examples=200, deadline=None)
@given(bases(), step_lists())
def test_weights_always_sum_to_100_and_the_version_share_never_falls(drawn, steps) -> None:
    base, version = drawn
    shares = [share_of(base, version)]
    for percent in steps[first_step(base, version, steps) - 1 :]:
        routes = routes_at(base, version, percent)
        assert sum(w for _, w in routes) == 100, (base, version, percent, routes)
        assert all(w >= 0 for _, w in routes)
        shares.append(share_of(routes, version))
    assert shares == sorted(shares), (base, version, steps, shares)
    assert shares[-1] == 100


@settings(max_examples=100, deadline=None)
@given(bases(), step_lists(), st.integers(0, 6), st.sampled_from(["rollback", None]))
def test_abort_restores_the_base_exactly(drawn, steps, k, verdict) -> None:
    base, version = drawn
    policy = RolloutPolicy(steps, 10, 60)
    step = min(first_step(base, version, steps) + k, len(steps))
    percent = steps[step - 1]
    if percent >= 100:
        return
    rec = RolloutRecord(
        "r", "a", "m", version, "e", base, (decision("start", 0, step, routes_at(base, version, percent)),)
    )
    move = decide_next(rec, policy, verdict, at(10 + (0 if verdict else 60)))  # type: ignore[arg-type]
    assert move.decision == "abort"
    assert move.routes == base and move.mirror is None and move.step == 0


def test_first_step_starts_where_the_version_already_is() -> None:
    assert first_step(BASE, "1.4.0", (10, 100)) == 1  # 10 % already: step 1 keeps the routes
    assert first_step(BASE, "1.4.0", (5, 25, 100)) == 2
    assert first_step((("1.3.0", 100),), "1.4.0", (5, 25, 100)) == 1


def test_no_decision_while_the_step_bakes_with_the_time_left() -> None:
    move = decide_next(started(), POLICY, "promote", at(20))
    assert move.decision is None and move.wait_seconds == pytest.approx(40)


def test_a_passing_analysis_after_the_bake_moves_one_step() -> None:
    move = decide_next(started(), POLICY, "promote", at(61))
    assert move.decision == "step" and move.step == 2
    assert move.routes == (("1.3.0", 50), ("1.4.0", 50))


def test_the_last_step_is_a_promote_to_100_percent() -> None:
    rec = started().with_decision(decision("step", 100, 2, routes_at(BASE, "1.4.0", 50)))
    move = decide_next(rec, POLICY, "promote", at(161))
    assert move.decision == "promote" and move.routes == (("1.4.0", 100),) and move.step == 3


def test_a_rollback_verdict_aborts_to_the_base() -> None:
    move = decide_next(started(), POLICY, "rollback", at(61))
    assert move.decision == "abort" and move.routes == BASE


def test_a_held_analysis_holds_and_aborts_after_the_progress_deadline() -> None:
    held = decide_next(started(), POLICY, "hold", at(60 + 599))
    assert held.decision == "hold" and held.routes == started().routes
    late = decide_next(started(), POLICY, "hold", at(60 + 600))
    assert late.decision == "abort" and late.routes == BASE
    assert "progress deadline (600 s)" in late.reason


def test_no_verdict_at_all_holds_like_a_held_analysis() -> None:
    move = decide_next(started(), POLICY, None, at(61))
    assert move.decision == "hold" and move.reason == "no analysis verdict"


def test_a_paused_or_finished_rollout_decides_nothing() -> None:
    paused = started().with_decision(decision("pause", 10, 1, routes_at(BASE, "1.4.0", 25)))
    assert decide_next(paused, POLICY, "rollback", at(1000)).decision is None
    aborted = started().with_decision(decision("abort", 10, 0, BASE))
    assert decide_next(aborted, POLICY, "promote", at(1000)).decision is None
    assert aborted.status == "aborted" and aborted.finished


def test_the_time_a_rollout_was_paused_counts_neither_to_the_bake_nor_to_the_deadline() -> None:
    routes = routes_at(BASE, "1.4.0", 25)
    rec = started().with_decision(decision("pause", 10, 1, routes)).with_decision(decision("resume", 5000, 1, routes))
    assert decide_next(rec, POLICY, "promote", at(5030)).decision is None  # baking again since the resume
    assert decide_next(rec, POLICY, "hold", at(5061)).decision == "hold"  # not past the deadline


def test_the_shadow_step_keeps_its_mirror_while_it_holds_and_drops_it_at_step_1() -> None:
    shadow = RolloutPolicy((25, 100), 60, 600, shadow_percent=20)
    rec = record(decision("start", 0, 0, BASE, mirror=("1.4.0", 20)))
    held = decide_next(rec, shadow, "hold", at(61))
    assert held.decision == "hold" and held.mirror == ("1.4.0", 20) and held.step == 0
    moved = decide_next(rec, shadow, "promote", at(61))
    assert moved.decision == "step" and moved.step == 1 and moved.mirror is None


def test_the_record_round_trips_through_its_json() -> None:
    rec = started().with_decision(decision("hold", 70, 1, routes_at(BASE, "1.4.0", 25), mirror=("1.4.0", 5)))
    again = RolloutRecord.from_json(json.loads(rec.dumps()))
    assert again == rec


def test_the_evidence_digest_is_of_the_canonical_json() -> None:
    assert evidence_digest(None) == "sha256:none"
    assert evidence_digest({"b": 1, "a": [1.5]}) == evidence_digest({"a": [1.5], "b": 1})
    assert evidence_digest({"a": 1}) != evidence_digest({"a": 2})
