"""The SQL path of ``feedback import`` for JSON lines writes exactly what the row-by-row path would, and
vouches for no file that path would refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog.feedback.bulk import import_jsonl
from catalog.feedback.events import check_events
from tests.feedback.cases import BAD, CASES, OUTCOMES, RECEIVED, event

GOOD = [row for _, row, field in CASES if field is None]


def _file(tmp_path: Path, rows: list[Any], blank_lines: bool = False) -> Path:
    path = tmp_path / "events.jsonl"
    gap = "\n" if blank_lines else ""
    path.write_text("".join(json.dumps(row) + "\n" + gap for row in rows))
    return path


def _bulk(tmp_path: Path, file: Path, stored: list[str] = ()) -> tuple[tuple[int, int] | None, list[dict[str, Any]]]:
    segment = tmp_path / "log" / "day=2026-12-06" / "segment.jsonl"
    done = import_jsonl(file, segment, OUTCOMES, RECEIVED, list(stored))
    written = [json.loads(line) for line in segment.read_text().splitlines()] if segment.exists() else []
    return done, written


def test_a_file_of_good_events_is_written_by_sql_exactly_as_row_by_row(tmp_path: Path):
    rows = [{**row, "event_id": f"e-{i}"} for i, row in enumerate(GOOD)]
    rows += [
        event(event_id="e-u", request_id=None, unit="ünïcode ✓"),
        event(event_id="e-v", outcome="basket_value", value=1e20),
    ]
    done, written = _bulk(tmp_path, _file(tmp_path, rows, blank_lines=True))
    expected, problems = check_events(rows, OUTCOMES, application="storefront", received=RECEIVED)
    assert problems == []
    assert done == (len(rows), 0)
    assert written == expected
    assert list(tmp_path.rglob(".*.tmp")) == []


@pytest.mark.parametrize(("what", "row", "field"), BAD, ids=[c[0] for c in BAD])
def test_sql_vouches_for_no_file_with_an_event_the_row_by_row_path_refuses(
    tmp_path: Path, what: str, row: dict[str, Any], field: str
):
    done, written = _bulk(tmp_path, _file(tmp_path, [event(event_id="fine"), row]))
    assert (done, written) == (None, [])


@pytest.mark.parametrize(
    "text",
    ['{"event_id": "a",\n', "[1, 2]\n", '"just a string"\n', ""],
    ids=["a broken line", "an array", "a string", "an empty file"],
)
def test_sql_leaves_what_is_not_a_file_of_events_to_the_row_by_row_path(tmp_path: Path, text: str):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event()) + "\n" + text if text else "")
    assert _bulk(tmp_path, path) == (None, [])


def test_sql_counts_duplicates_within_the_file_and_of_stored_segments(tmp_path: Path):
    stored = tmp_path / "stored.jsonl"
    stored.write_text(json.dumps({"event_id": "e-1"}) + "\n" + '{"event_id": "torn')
    rows = [event(event_id="e-1"), event(event_id="e-2"), event(event_id="e-2"), event(event_id="e-3")]
    done, _ = _bulk(tmp_path, _file(tmp_path, rows), [str(stored)])
    assert done == (4, 2)
