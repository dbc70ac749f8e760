"""Storing outcome events: whole batches, durable before acknowledged, nothing left of a refused one."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from catalog.domain.routing import key_hash
from catalog.feedback.events import validate_events
from catalog.feedback.ingest import StoredCount, outcome_dir, store_events, stored_duplicates
from tests.feedback.cases import OUTCOMES, RECEIVED, event
from tests.helpers import ROOT


def _stored(root: Path, application: str = "storefront") -> list[dict[str, object]]:
    lines = [
        line
        for path in sorted(outcome_dir(root, application).rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    return [json.loads(line) for line in lines]


def _batch(*rows: dict[str, object]) -> list[dict[str, object]]:
    return validate_events(list(rows), OUTCOMES, application="storefront", received=RECEIVED)


def test_a_batch_is_appended_to_the_open_segment_of_its_received_day(tmp_path: Path):
    assert store_events(tmp_path, "storefront", _batch(event(), event(event_id="e-2"))) == StoredCount(2, 0)
    assert store_events(tmp_path, "storefront", _batch(event(event_id="e-3"))) == StoredCount(1, 0)
    (segment,) = outcome_dir(tmp_path, "storefront").glob("*/*.jsonl")
    assert segment.parent.name == "day=2026-12-06"
    assert [e["event_id"] for e in _stored(tmp_path)] == ["e-1", "e-2", "e-3"]


def test_a_unit_is_stored_hashed_and_its_raw_value_is_in_no_file(tmp_path: Path):
    store_events(tmp_path, "storefront", _batch(event(request_id=None, unit="alice@example.com")))
    (record,) = _stored(tmp_path)
    assert record["unit_hash"] == key_hash("alice@example.com")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"alice" not in path.read_bytes(), path


def test_duplicates_count_the_ids_stored_before_and_those_repeated_in_the_batch(tmp_path: Path):
    assert stored_duplicates(tmp_path, "storefront", ["e-1", "e-2"]) == 0  # nothing stored yet
    store_events(tmp_path, "storefront", _batch(event(), event(event_id="e-2")))
    assert stored_duplicates(tmp_path, "storefront", ["e-1", "e-3", "e-3", "e-4"]) == 2
    assert store_events(tmp_path, "storefront", _batch(event(), event())).duplicates == 1
    assert len(_stored(tmp_path)) == 4  # duplicates are kept: the warehouse counts them once


def test_a_closed_outcome_segment_becomes_parquet_and_its_events_still_count_as_stored(tmp_path: Path):
    # the outcome log is written by the same segment writer as the assignment log: a new day closes
    # the last day's segment, which becomes Parquet, and duplicates are found in Parquet too
    store_events(tmp_path, "storefront", _batch(event(), event(event_id="e-2")))
    next_day = RECEIVED + timedelta(days=1)
    batch = validate_events([event(event_id="e-3")], OUTCOMES, application="storefront", received=next_day)
    store_events(tmp_path, "storefront", batch)
    folder = outcome_dir(tmp_path, "storefront")
    assert [p.name.endswith(".parquet") for p in sorted(folder.glob("day=2026-12-06/*"))] == [True]
    assert [p.suffix for p in sorted(folder.glob("day=2026-12-07/*"))] == [".jsonl"]
    assert stored_duplicates(tmp_path, "storefront", ["e-1", "e-2", "e-3", "e-4"]) == 3


_STORE_TWO_BATCHES = """
import json, sys
from pathlib import Path
from catalog.errors import DiskFull
from catalog.feedback.events import validate_events
from catalog.feedback.ingest import store_events
from tests.feedback.cases import OUTCOMES, event

root = Path(sys.argv[1])
def batch(prefix, n):
    return validate_events([event(event_id=f"{prefix}-{i}") for i in range(n)], OUTCOMES, application="storefront")
store_events(root, "storefront", batch("small", 3))
try:
    store_events(root, "storefront", batch("big", 5000))
except DiskFull as e:
    print(json.dumps({"refused": str(e)}))
else:
    print(json.dumps({"refused": None}))
"""


def test_a_batch_the_disk_cannot_hold_is_refused_and_nothing_of_it_stays(tmp_path: Path):
    def limit() -> None:  # a real EFBIG past 64 KiB (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_STORE_TWO_BATCHES), str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, preexec_fn=limit,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    refused = json.loads(done.stdout)["refused"]
    assert refused and refused.startswith("no space left on device while writing"), refused
    assert [e["event_id"] for e in _stored(tmp_path)] == ["small-0", "small-1", "small-2"]
