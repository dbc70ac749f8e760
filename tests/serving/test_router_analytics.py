"""The router's analytics: segmented assignment logs, the tables log (the weight epochs), stdout lines."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalog.feedback.logs import tables_log
from catalog.feedback.warehouse import observe
from tests.serving.router_fixtures import (
    Fleet,
    infer_all,
    logged_assignments,
    table_document,
    wait_for_assignments,
    wait_for_table,
    write_table,
)

pytestmark = pytest.mark.slow

M, A, B = "rec", "1.0.0", "2.0.0"


def _users(first: int, count: int) -> list[dict[str, str]]:
    return [{"x-user-id": f"user-{i}", "x-request-id": f"req-{i}"} for i in range(first, first + count)]


def test_the_router_logs_segmented_assignments_and_each_table_it_installs(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    analytics = tmp_path / "analytics"
    try:
        fakes = fleet.fakes(M, [(A, "a"), (B, "b")])
        table = tmp_path / "table.json"
        first = write_table(table, table_document({M: [(A, 50, fakes[:1]), (B, 50, fakes[1:])]}))
        router = fleet.router(table, analytics=analytics)
        infer_all(router.url, _users(0, 200), M)
        wait_for_assignments(analytics, "shop", 200)
        open_segments = list((analytics / "assignments" / "application=shop").glob("day=*/*.jsonl"))
        assert len(open_segments) == 1
        assert open_segments[0].parent.name == f"day={datetime.now(UTC).date().isoformat()}"

        second = write_table(table, table_document({M: [(A, 20, fakes[:1]), (B, 80, fakes[1:])]}))
        wait_for_table(router, second)
        infer_all(router.url, _users(200, 200), M)
        wait_for_assignments(analytics, "shop", 400)
        assert router.terminate() == 0

        entries = [json.loads(line) for line in tables_log(analytics, "shop").read_text().splitlines()]
        assert [(e["table"], e["weights"]) for e in entries] == [
            (first, {M: {A: 50, B: 50}}),
            (second, {M: {A: 20, B: 80}}),
        ]
        assert not list(analytics.glob("assignments/*/*/*.jsonl"))  # closed on exit: Parquet
        assert list(analytics.glob("assignments/application=shop/day=*/*.parquet"))

        seen = observe(analytics, "shop", M, outcomes={}, sticky=True)
        assert sum(arm.units for arm in seen.arms) == sum(arm.requests for arm in seen.arms) == 400
        assert [e.declared for e in seen.epochs] == [{A: 50, B: 50}, {A: 20, B: 80}]
        assert [sum(e.observed.values()) for e in seen.epochs] == [200, 200]
        assert seen.epochs[1].observed[B] > seen.epochs[1].observed[A]
    finally:
        fleet.close()


def test_assignments_stdout_writes_each_assignment_as_a_json_line(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    try:
        (fake,) = fleet.fakes(M, [(A, "a")])
        table = tmp_path / "table.json"
        write_table(table, table_document({M: [(A, 100, [fake])]}))
        router = fleet.router(table, "--assignments-stdout")
        answers = infer_all(router.url, _users(0, 20), M)
        assert all(a.status == 200 for a in answers)
        lines: list[str] = []

        def read() -> None:
            assert router.proc.stdout is not None
            while len(lines) < 20 and (line := router.proc.stdout.readline()):
                lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(30)
        logged = [json.loads(line) for line in lines]
        assert Counter(entry["request_id"] for entry in logged) == Counter(f"req-{i}" for i in range(20))
        assert {(entry["model"], entry["version"], entry["assignment"]) for entry in logged} == {(M, A, "sticky")}
        assert not list(tmp_path.rglob("*.parquet")) and not (tmp_path / "analytics").exists()
    finally:
        fleet.close()


def test_a_router_killed_while_it_logs_leaves_a_segment_the_next_one_seals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = Fleet(tmp_path)
    analytics = tmp_path / "analytics"
    try:
        (fake,) = fleet.fakes(M, [(A, "a")])
        table = tmp_path / "table.json"
        write_table(table, table_document({M: [(A, 100, [fake])]}))
        router = fleet.router(table, analytics=analytics)
        infer_all(router.url, _users(0, 100), M)
        wait_for_assignments(analytics, "shop", 100)
        router.proc.kill()  # kill -9: no goodbye, the segment stays .jsonl
        router.proc.wait(10)
        (dead,) = analytics.glob("assignments/*/*/*.jsonl")
        with open(dead, "a", encoding="utf-8") as segment:  # the line it was writing when it died
            segment.write('{"time":"2026-12-06T10:00:00.000000Z","request_id":"torn-')

        with caplog.at_level(logging.WARNING, logger="catalog.feedback.logs"):
            seen = observe(analytics, "shop", M, outcomes={})
        assert sum(arm.requests for arm in seen.arms) == 100  # the torn line is not read
        assert f"{dead}: skipped a torn last line" in caplog.text

        fleet.router(table, analytics=analytics)  # the next router seals the dead segment
        assert not dead.exists() and dead.with_suffix(".parquet").exists()
        assert sum(arm.requests for arm in observe(analytics, "shop", M, outcomes={}).arms) == 100
    finally:
        fleet.close()


def test_the_router_records_the_prediction_only_where_the_application_declares_a_label(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    labelled, plain = tmp_path / "labelled", tmp_path / "plain"
    try:
        (fake,) = fleet.fakes(M, [(A, "a")])
        with_label = table_document({M: [(A, 100, [fake])]}) | {"outcomes": {"is_fraud": "label"}}
        write_table(tmp_path / "labelled.json", with_label)
        router = fleet.router(tmp_path / "labelled.json", analytics=labelled)
        scored = [{"x-request-id": f"s-{i}", "x-fake-score": str(i / 8)} for i in range(4)]
        infer_all(router.url, [*scored, {"x-request-id": "failed", "x-fake-status": "500", "x-fake-score": "1"}], M)
        infer_all(router.url, [{"x-request-id": "no-score"}], M)  # the first output is not a number
        lines = {line["request_id"]: line for line in wait_for_assignments(labelled, "shop", 6)}
        assert {rid: lines[rid]["prediction"] for rid in lines} == {
            "s-0": 0.0,
            "s-1": 0.125,
            "s-2": 0.25,
            "s-3": 0.375,
            "failed": None,
            "no-score": None,
        }
        assert router.terminate() == 0  # its segment closes: Parquet keeps the predictions
        closed = {line["request_id"]: line["prediction"] for line in logged_assignments(labelled, "shop")}
        assert closed["s-3"] == 0.375 and closed["failed"] is None

        write_table(tmp_path / "plain.json", table_document({M: [(A, 100, [fake])]}))
        router = fleet.router(tmp_path / "plain.json", analytics=plain)
        infer_all(router.url, [{"x-request-id": "p-0", "x-fake-score": "0.5"}], M)
        (line,) = wait_for_assignments(plain, "shop", 1)
        assert "prediction" not in line  # no label declared: the answer is not read
    finally:
        fleet.close()
