"""The history of `modelcat analyze`: the looks at the arms' snapshots, and the decision replayed at each."""

from __future__ import annotations

from dataclasses import replace

from catalog.analysis.data import ArmData, ArmSnapshot, Observations
from catalog.analysis.run import decide_with_history, look_times
from catalog.analysis.verdict import decide
from tests.analysis.helpers import OBSERVATIONS, PLAN, TIMES


def test_the_looks_are_the_snapshot_times_at_most_a_limit_of_them_the_last_kept():
    assert look_times(OBSERVATIONS) == list(TIMES[1:])
    times = [f"2026-12-01T{h:02d}:00:00Z" for h in range(24)]
    many = Observations(
        "a", "m", times[0], times[-1], (ArmData("1.0.0", 1, 1, 0, history=tuple(ArmSnapshot(t, 1) for t in times)),)
    )
    picked = look_times(many, limit=5)
    assert picked == [times[0], times[6], times[12], times[17], times[23]]
    assert look_times(replace(many, arms=()), limit=5) == []


def test_the_decision_is_replayed_at_each_look_over_the_snapshots_up_to_then():
    decision, looks = decide_with_history(PLAN, OBSERVATIONS)
    assert decision == decide(PLAN, OBSERVATIONS)
    assert [look.time for look in looks] == list(TIMES[1:])
    first = looks[0].decision.versions[0]
    assert first.verdict == "hold" and "500 units per arm needed" in first.metrics[0].reason  # 100 units then
    assert looks[-1].decision.versions[0].metrics[0].interval is not None
    _, early = decide_with_history(replace(PLAN, min_samples_per_arm=50), OBSERVATIONS)
    primary = [next(m for m in look.decision.versions[0].metrics if m.name == "conversion") for look in early]
    widths = [m.interval[1] - m.interval[0] for m in primary if m.interval is not None]
    assert len(widths) == 3 and widths[0] > widths[1] > widths[2]  # more units, narrower intervals
