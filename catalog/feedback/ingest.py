"""Storing outcome events: a batch is acknowledged only once it is on disk, whole.

``store_events`` appends a validated batch (``catalog.feedback.events``) as JSON lines to this
process's open outcome segment for the day it was received, under the stack's analytics folder::

    <run dir>/analytics/outcomes/application=<application>/day=<YYYY-MM-DD>/<segment>.jsonl

then ``fsync``s it (and its folder, when the segment is new) before it returns: a caller
acknowledges the events only after that. The writing is ``catalog.feedback.logs.SegmentWriter``'s,
the same as the assignment log's: each process appends to a segment of its own, locked while open,
so writers never interleave and a reader can tell a live segment from a dead one; a closed segment
becomes Parquet. When the write
fails (disk full: ``ENOSPC``, ``EDQUOT``, ``EFBIG``) the segment is cut back to its length before
the batch, so no event of a refused batch is left, and ``DiskFull`` is raised. A process killed
mid-write can leave a torn last line in its segment, which the log's reader skips; the batch was
not acknowledged, so its sender sends it again, with the same event ids (duplicates count once).

Duplicates (an event id already stored, or repeated in the batch) are kept in the log; the
warehouse counts each event id once. ``stored_duplicates`` counts them for a summary.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from catalog.domain.analysis_plan import OutcomeKind
from catalog.domain.problems import Problem
from catalog.errors import DiskFull, EventsInvalid, UsageError
from catalog.feedback.bulk import count_duplicates, import_jsonl
from catalog.feedback.events import Format, StoredEvent, check_events, read_event_file, utc_text
from catalog.feedback.logs import SegmentWriter, segment_name, stream_dir
from catalog.wording import plural

__all__ = [
    "ImportResult",
    "StoredCount",
    "import_events",
    "outcome_dir",
    "store_events",
    "stored_duplicates",
]


@dataclass(frozen=True)
class StoredCount:
    stored: int  # events written (duplicates included)
    duplicates: int = 0  # of which: an event id stored before, or earlier in the batch


def outcome_dir(root: Path, application: str) -> Path:
    """The outcome log of ``application`` under the analytics folder ``root``: one folder per day."""
    return stream_dir(root, "outcomes", application)


_writers: dict[tuple[Path, str], SegmentWriter] = {}
_writers_lock = threading.Lock()


def _writer(root: Path, application: str) -> SegmentWriter:
    """This process's writer of ``application``'s outcome log (it seals dead writers' segments when made)."""
    with _writers_lock:
        writer = _writers.get((root, application))
        if writer is None:
            writer = _writers[(root, application)] = SegmentWriter(root, "outcomes", application)
        return writer


def _lines(events: Sequence[StoredEvent]) -> bytes:
    import orjson

    return b"".join(orjson.dumps(event) + b"\n" for event in events)


def _store(root: Path, application: str, day: str, data: bytes) -> None:
    where = outcome_dir(root, application) / f"day={day}"
    try:
        _writer(root, application).append(data, day, fsync=True)
    except OSError as e:
        if e.errno in DiskFull.ERRNOS:
            raise DiskFull(str(where), e) from e
        raise UsageError(f"cannot write the outcome log in {where}: {e.strerror or e}; nothing stored") from e


def store_events(root: Path, application: str, events: Sequence[StoredEvent]) -> StoredCount:
    """Append ``events`` (one batch, received the same day) to the open outcome segment, durably.

    ``root``: the stack's analytics folder. Returns once written and fsynced; raises ``DiskFull``
    (nothing of the batch left in the log) or ``UsageError`` when the log cannot be written at all.
    ``duplicates`` counts repeats within the batch only (``stored_duplicates`` looks at the log).
    """
    if not events:
        return StoredCount(0)
    _store(root, application, events[0]["received"][:10], _lines(events))
    return StoredCount(len(events), len(events) - len({event["event_id"] for event in events}))


@dataclass(frozen=True)
class ImportResult:
    file: Path
    application: str
    folder: Path  # the outcome log the events went to
    stored: int
    duplicates: int

    def summary(self) -> str:
        """``N events stored (K duplicates of events already stored)``."""
        return (
            f"{plural(self.stored, 'event')} stored ({plural(self.duplicates, 'duplicate')} of events already stored)"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "file": str(self.file),
            "application": self.application,
            "log": str(self.folder),
            "stored": self.stored,
            "duplicates": self.duplicates,
        }


def import_events(
    root: Path, application: str, outcomes: Mapping[str, OutcomeKind], file: Path, fmt: Format
) -> ImportResult:
    """Store the events of ``file`` in ``application``'s outcome log under the analytics folder
    ``root``, all or nothing: ``EventsInvalid`` with every bad line (or row) and field, and
    nothing stored, when any is bad."""
    received = datetime.now(UTC)
    folder = outcome_dir(root, application)
    if fmt == "jsonl":  # DuckDB checks and writes a whole file of good events in SQL
        segment = folder / f"day={utc_text(received)[:10]}" / f"{segment_name()}.jsonl"
        done = import_jsonl(file, segment, outcomes, received, _stored_segments(root, application))
        if done is not None:
            return ImportResult(file, application, folder, *done)
    problems: list[Problem] = []
    chunks: list[bytes] = []
    ids: list[str] = []
    for rows, where in read_event_file(file, fmt, problems):
        events, bad = check_events(
            rows, outcomes, application=application, received=received, source=str(file), where=where
        )
        problems += bad
        if not problems:
            chunks.append(_lines(events))
            ids += [event["event_id"] for event in events]
    if problems:
        raise EventsInvalid(str(file), sorted(problems, key=lambda p: p.line))
    duplicates = stored_duplicates(root, application, ids)
    if ids:
        _store(root, application, utc_text(received)[:10], b"".join(chunks))
    return ImportResult(file, application, folder, len(ids), duplicates)


def _stored_segments(root: Path, application: str) -> list[str]:
    """The outcome log's segments of ``application``: open (JSON lines) and closed (Parquet)."""
    folder = outcome_dir(root, application)
    return sorted(str(p) for p in folder.glob("day=*/*.*") if p.suffix in (".jsonl", ".parquet"))


def stored_duplicates(root: Path, application: str, event_ids: Iterable[str]) -> int:
    """How many of ``event_ids`` (a batch about to be stored) repeat an event id already in the
    outcome log of ``application`` or earlier in the batch."""
    ids = list(event_ids)
    segments = _stored_segments(root, application)
    if not segments or not ids:
        return len(ids) - len(set(ids))
    import duckdb

    with duckdb.connect() as db:
        db.execute("CREATE TEMP TABLE events AS SELECT unnest($ids) AS event_id", {"ids": ids})
        return count_duplicates(db, segments)
