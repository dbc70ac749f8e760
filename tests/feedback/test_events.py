"""One outcome event: what is accepted, what is refused (naming the event and field), what is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from catalog.domain.routing import key_hash
from catalog.errors import EventsInvalid
from catalog.feedback.events import read_event_file, validate_events
from tests.feedback.cases import BAD, CASES, OUTCOMES, RECEIVED, event


def _validate(rows: list[Any]) -> list[dict[str, Any]]:
    return validate_events(rows, OUTCOMES, application="storefront", received=RECEIVED)


@pytest.mark.parametrize(("what", "row", "field"), CASES, ids=[c[0] for c in CASES])
def test_each_event_is_accepted_or_refused_for_the_field_at_fault(what: str, row: dict[str, Any], field: str | None):
    if field is None:
        assert len(_validate([row])) == 1
        return
    with pytest.raises(EventsInvalid) as caught:
        _validate([event(), row])
    assert [(p.loc, p.path) for p in caught.value.problems] == [((1, field), f"events[1].{field}")]


def test_a_batch_with_bad_events_names_every_one_and_stores_none():
    rows = [event(event_id="a"), *(row for _, row, _ in BAD)]
    with pytest.raises(EventsInvalid) as caught:
        _validate(rows)
    assert [p.loc for p in caught.value.problems] == [(i + 1, field) for i, (_, _, field) in enumerate(BAD)]
    assert str(caught.value).startswith(f"the events: refused, nothing stored ({len(BAD)} problems): events[1].")


def test_an_undeclared_outcome_names_the_declared_ones_and_the_nearest():
    with pytest.raises(EventsInvalid) as caught:
        _validate([event(outcome="convrsion")])
    (problem,) = caught.value.problems
    assert problem.message == (
        "outcome 'convrsion' is not declared by application storefront (declared: basket_value, conversion, is_fraud)"
    )
    assert problem.hint.startswith("did you mean 'conversion'?")


def test_a_time_more_than_five_minutes_ahead_is_refused_saying_by_how_much():
    with pytest.raises(EventsInvalid) as caught:
        _validate([event(time="2026-12-06T12:30:00Z")])
    assert caught.value.problems[0].message == (
        "2026-12-06T12:30:00Z is 30 min after it was received (at most 5 min ahead)"
    )


def test_the_stored_record_hashes_the_unit_and_stamps_times_in_utc():
    unit, request = _validate(
        [event(request_id=None, unit="alice@example.com"), event(event_id="e-2", time="2026-12-06T13:00:00+02:00")]
    )
    assert unit == {
        "event_id": "e-1",
        "request_id": None,
        "unit_hash": key_hash("alice@example.com"),
        "outcome": "conversion",
        "value": 1.0,
        "time": "2026-12-06T12:00:00.000000Z",  # no time given: when it was received
        "received": "2026-12-06T12:00:00.000000Z",
    }
    assert "alice" not in json.dumps(unit)
    assert (request["unit_hash"], request["time"]) == (None, "2026-12-06T11:00:00.000000Z")


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _read(path: Path, fmt: str) -> tuple[list[Any], list[tuple[str, int]], list[Any]]:
    problems: list[Any] = []
    rows, places = [], []
    for chunk, where in read_event_file(path, fmt, problems):  # type: ignore[arg-type]
        places += [where(i) for i in range(len(chunk))]
        rows += chunk
    return rows, places, problems


def test_json_lines_are_read_with_their_line_numbers_and_a_broken_line_is_named(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event()) + "\n\n" + '{"event_id": "e-2",\n' + json.dumps(event(event_id="e-3")) + "\n")
    rows, places, problems = _read(path, "jsonl")
    assert [row["event_id"] for row in rows] == ["e-1", "e-3"]
    assert places == [("", 1), ("", 4)]
    assert [(p.code, p.line) for p in problems] == [("event.json", 3)]


def test_csv_cells_are_read_as_the_numbers_and_booleans_they_spell(tmp_path: Path):
    path = tmp_path / "events.csv"
    path.write_text("event_id,unit,outcome,value,time\na,alice,conversion,true,\nb,bob,basket_value,12.5,\n")
    rows, places, problems = _read(path, "csv")
    assert rows == [
        {"event_id": "a", "unit": "alice", "outcome": "conversion", "value": True},
        {"event_id": "b", "unit": "bob", "outcome": "basket_value", "value": 12.5},
    ]
    assert (places, problems) == ([("", 2), ("", 3)], [])


def test_an_unknown_csv_column_is_one_problem_on_the_header_line(tmp_path: Path):
    path = tmp_path / "events.csv"
    path.write_text("event_id,unit,outcome,value,tim\na,alice,conversion,1,x\nb,bob,conversion,0,y\n")
    rows, _, problems = _read(path, "csv")
    assert [(p.line, p.path, p.message) for p in problems] == [(1, "tim", "unknown column 'tim'")]
    assert all("tim" not in row for row in rows)


@pytest.mark.parametrize(("what", "row", "field"), BAD, ids=[c[0] for c in BAD])
def test_a_file_refuses_each_bad_event_for_the_same_field_as_a_request(
    tmp_path: Path, what: str, row: dict[str, Any], field: str
):
    path = _jsonl(tmp_path / "events.jsonl", [event(), row])
    ((rows, where),) = list(read_event_file(path, "jsonl", []))
    with pytest.raises(EventsInvalid):
        _validate(rows)
    from catalog.feedback.events import check_events

    _, problems = check_events(rows, OUTCOMES, application="storefront", received=RECEIVED, where=where)
    assert [(p.line, p.path) for p in problems] == [(2, field)]


def test_parquet_rows_are_read_with_their_row_numbers_and_typed_values(tmp_path: Path):
    source = _jsonl(tmp_path / "events.jsonl", [event(), event(event_id="e-2", outcome="basket_value", value=3.5)])
    target = tmp_path / "events.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_json('{source}')) TO '{target}' (FORMAT parquet)")
    rows, places, problems = _read(target, "parquet")
    assert [(row["event_id"], row["value"]) for row in rows] == [("e-1", 1), ("e-2", 3.5)]
    assert (places, problems) == ([("row 1", 0), ("row 2", 0)], [])
