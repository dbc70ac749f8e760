"""observe(): the arms, the joins of outcome events to assignments, the history and the epochs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from catalog.analysis.data import ArmData, Observations, OutcomeStats
from catalog.domain.analysis_plan import OutcomeKind
from catalog.feedback.warehouse import HISTORY_POINTS, observe
from tests.feedback.helpers import T0, assignment, at, event, write_records, write_tables

OUTCOMES: dict[str, OutcomeKind] = {"conversion": "proportion", "basket": "mean"}

# Users u1, u2 on version A, u3, u4 on B; u4 is later served by A once (it stays B's unit). A pinned
# request, another model's request and a user assigned before the period are not this binding's.
ASSIGNMENTS = [
    assignment("old", "A", at(days=-10), "u5"),
    assignment("r1", "A", at(0), "u1", latency_ms=10),
    assignment("r3", "B", at(0), "u3", latency_ms=30),
    assignment("r4", "B", at(0.1), "u4", latency_ms=40),
    assignment("r2", "A", at(0.2), "u2", latency_ms=20),
    assignment("pin", "A", at(0.3), how="pinned"),
    assignment("other", "A", at(0.3), "u1", model="other"),
    assignment("r1b", "A", at(15), "u1", status=503, latency_ms=1000),  # next day: the first segment closes
    assignment("r4b", "A", at(16), "u4", status=499, latency_ms=50),
]
EVENTS = [
    event("e1", "conversion", 1, at(0.5), request_id="r1"),
    event("e2", "conversion", 1, at(2), unit="u1"),  # u1 converted twice: capped at 1
    event("e3", "conversion", 1, at(100), unit="u3"),  # 100 h after u3's first assignment: out of window
    event("e4", "conversion", 1, at(1), request_id="nobody-knows"),
    event("e5", "conversion", 1, at(1), unit="a-stranger"),
    event("e6", "conversion", 1, at(1), request_id="other"),
    event("e7", "conversion", 1, at(1), request_id="pin"),
    event("e8", "conversion", 1, at(1), unit="u5"),
    event("e9", "basket", 10.0, at(1), unit="u3", received=at(days=3)),  # late
    event("e10", "basket", 5.0, at(2), unit="u3"),
    event("e11", "conversion", 1, at(1), unit="u4"),
    event("e9", "basket", 99.0, at(1), unit="u3", received=at(days=4)),  # a duplicate of e9
    event("e12", "shoe_size", 44, at(1), unit="u1"),  # not a declared outcome: not read
]


@dataclass
class Scene:
    root: Path
    observations: Observations

    def arm(self, version: str) -> ArmData:
        (arm,) = [a for a in self.observations.arms if a.version == version]
        return arm


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("analytics")
    write_records(root, "assignments", ASSIGNMENTS[:4]).close()
    writer = write_records(root, "assignments", ASSIGNMENTS[4:])  # its last segment stays open
    events = write_records(root, "outcomes", EVENTS, day_of="received")
    write_tables(
        root,
        [
            ("t0", at(days=-20), {"rec": {"A": 100, "B": 0}}),
            ("t1", at(-1), {"rec": {"A": 50, "B": 50}, "other": {"A": 100}}),
            ("t1b", at(-0.5), {"rec": {"A": 50, "B": 50}, "other": {"A": 90}}),  # rec's weights unchanged
            ("t2", at(10), {"rec": {"A": 20, "B": 80}}),
        ],
    )
    try:
        observations = observe(
            root, "shop", "rec", since=at(-0.75), until=at(days=5), outcomes=OUTCOMES, latency_limit_ms=100
        )
        yield Scene(root, observations)
    finally:
        writer.close()
        events.close()


def test_the_scene_reads_closed_and_open_segments(scene: Scene) -> None:
    assert list(scene.root.glob("assignments/*/day=2026-12-01/*.parquet"))
    assert list(scene.root.glob("assignments/*/day=2026-12-02/*.jsonl"))
    assert not list(scene.root.glob("assignments/*/day=2026-12-02/*.parquet"))


def test_pinned_requests_and_other_models_are_left_out_and_units_are_users(scene: Scene) -> None:
    a, b = scene.arm("A"), scene.arm("B")
    assert [arm.version for arm in scene.observations.arms] == ["A", "B"]
    assert (a.units, a.requests, b.units, b.requests) == (2, 4, 2, 2)  # u4 stays B's unit


def test_errors_are_5xx_and_a_client_gone_is_not_an_error(scene: Scene) -> None:
    assert (scene.arm("A").errors, scene.arm("B").errors) == (1, 0)


def test_latency_percentiles_and_requests_over_the_limit(scene: Scene) -> None:
    a = scene.arm("A")
    assert a.latency_p50_ms == pytest.approx(35.0)  # of 10, 20, 50, 1000
    assert a.latency_p99_ms == pytest.approx(1000 - 0.03 * 950)
    assert a.over_latency_limit == 1 and scene.arm("B").over_latency_limit == 0


def test_a_proportion_is_capped_at_one_per_unit_and_silent_units_count_zero(scene: Scene) -> None:
    assert scene.arm("A").outcomes["conversion"] == OutcomeStats(n=2, total=1.0, total_sq=1.0, events=2)
    assert scene.arm("B").outcomes["conversion"] == OutcomeStats(n=2, total=1.0, total_sq=1.0, events=1)


def test_a_duplicate_event_counts_once_and_the_first_received_wins(scene: Scene) -> None:
    assert scene.arm("B").outcomes["basket"] == OutcomeStats(n=2, total=15.0, total_sq=225.0, events=2)
    assert scene.arm("A").outcomes["basket"] == OutcomeStats(n=2, total=0.0, total_sq=0.0, events=0)
    assert scene.observations.joins.duplicates == 1


def test_each_event_is_counted_once_by_how_it_joined(scene: Scene) -> None:
    joins = scene.observations.joins
    assert (joins.attributed, joins.unattributed, joins.out_of_window, joins.elsewhere) == (5, 2, 1, 3)
    parts = joins.duplicates + joins.attributed + joins.unattributed + joins.out_of_window + joins.elsewhere
    assert joins.events == parts == 12  # every declared outcome's event read, duplicates included


def test_a_late_event_is_attributed_and_counted_late(scene: Scene) -> None:
    assert scene.observations.joins.late == 1


def test_the_history_is_cumulative_and_ends_at_the_totals(scene: Scene) -> None:
    for arm in scene.observations.arms:
        assert len(arm.history) == HISTORY_POINTS
        assert [s.time for s in arm.history] == sorted(s.time for s in arm.history)
        units = [s.units for s in arm.history]
        assert units == sorted(units) and units[-1] == arm.units
        assert arm.history[-1].outcomes == arm.outcomes
    # 30 points over the 2 hours from the first assignment to the last event: 4 minutes apart
    early = scene.arm("B").history[0]
    assert (early.time, early.units, early.outcomes["basket"].total) == (at(4 / 60), 1, 0)  # u4 came at 6 min


def test_epochs_come_from_the_tables_log_with_the_units_first_assigned_in_each(scene: Scene) -> None:
    epochs = scene.observations.epochs
    assert [(e.table, e.declared) for e in epochs] == [
        ("t1", {"A": 50, "B": 50}),  # t0 ended before the period began; t1b kept rec's weights
        ("t2", {"A": 20, "B": 80}),
    ]
    assert (epochs[0].start, epochs[0].end, epochs[1].end) == (at(-1), at(10), at(days=5))
    assert [e.observed for e in epochs] == [{"A": 2, "B": 2}, {}]


def test_the_observations_name_their_source_period_and_queries(scene: Scene) -> None:
    o = scene.observations
    assert (o.application, o.model, o.since, o.until) == ("shop", "rec", at(-0.75), at(days=5))
    assert o.telemetry_source == "assignment-log"
    assert "read_parquet" in o.sql["assignments"] and "quantile_cont" in o.sql["requests per version"]


def test_the_same_data_gives_the_same_observations_and_queries_every_time(scene: Scene) -> None:
    # the open segments are read from copies in a new scratch folder each time: its name is not in the SQL
    again = observe(
        scene.root, "shop", "rec", since=at(-0.75), until=at(days=5), outcomes=OUTCOMES, latency_limit_ms=100
    )
    assert again == scene.observations
    assert "<copies of the open segments>" in again.sql["assignments"]


def test_without_any_data_every_count_is_zero(tmp_path: Path) -> None:
    empty = observe(tmp_path, "shop", "rec", outcomes=OUTCOMES)
    assert (empty.arms, empty.epochs, empty.joins.events) == ([], [], 0)


def test_events_stored_by_the_feedback_endpoint_join_the_assignments(tmp_path: Path) -> None:
    from catalog.domain.routing import key_hash
    from catalog.feedback.events import check_events
    from catalog.feedback.ingest import store_events

    write_records(tmp_path, "assignments", [assignment("r1", "A", at(0), key_hash("alice"))]).close()
    received = T0 + timedelta(hours=1)
    rows = [
        {"event_id": "x1", "unit": "alice", "outcome": "conversion", "value": True, "time": at(0.5)},
        {"event_id": "x2", "request_id": "r1", "outcome": "basket", "value": 12.5},
    ]
    events, problems = check_events(rows, OUTCOMES, application="shop", received=received)
    assert not problems
    store_events(tmp_path, "shop", events)
    seen = observe(tmp_path, "shop", "rec", outcomes=OUTCOMES, until=at(2))
    (arm,) = seen.arms
    assert arm.outcomes["conversion"] == OutcomeStats(n=1, total=1.0, total_sq=1.0, events=1)
    assert arm.outcomes["basket"] == OutcomeStats(n=1, total=12.5, total_sq=156.25, events=1)
    assert seen.joins.attributed == 2
