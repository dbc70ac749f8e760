"""Segmented append-only logs: assignments, outcome events and shadow comparisons, JSON lines while
open, Parquet once closed.

Layout under a stack's analytics folder (``catalog.layout.analytics_dir``), Hive-partitioned so that
DuckDB's ``read_parquet(..., hive_partitioning=true)`` reads it, here or in object storage::

    analytics/
      assignments/application=<app>/day=<YYYY-MM-DD>/<segment>.jsonl     open (being appended)
      assignments/application=<app>/day=<YYYY-MM-DD>/<segment>.parquet   closed
      outcomes/application=<app>/day=<received day>/<segment>.jsonl|.parquet
      shadow/application=<app>/day=<YYYY-MM-DD>/<segment>.jsonl|.parquet    mirrored requests compared
      tables/application=<app>/tables.jsonl                               routing tables installed

Each writer (``SegmentWriter``) appends to a segment of its own, named ``<UTC start>-<pid>-<random>``,
and holds an exclusive ``flock`` on it while it is open. A segment closes when the day of what is
appended changes or when it grows over ``max_bytes``; closing converts it: DuckDB ``COPY ... TO``
a hidden temporary name, rename to ``<segment>.parquet``, then remove the ``.jsonl``. A crash
between the rename and the removal leaves both files: readers (``open_segments``) then ignore the
``.jsonl``, so a segment is never counted twice, and the next seal removes it.

A segment whose writer died (``kill -9``) is no longer locked: ``seal_dead_segments`` converts it
(a writer does so when it starts). Its last line may be torn (no trailing newline): it is skipped
with a warning, never read as data (``complete_prefix``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from catalog.files import fsync_dir

__all__ = [
    "ASSIGNMENT_COLUMNS",
    "COLUMNS",
    "DEFAULT_MAX_BYTES",
    "KEYS",
    "OUTCOME_COLUMNS",
    "SHADOW_COLUMNS",
    "OpenSegment",
    "SegmentWriter",
    "Stream",
    "append_table",
    "complete_prefix",
    "json_line",
    "open_segments",
    "partition_glob",
    "seal_dead_segments",
    "segment_name",
    "stream_dir",
    "tables_log",
]

log = logging.getLogger("catalog.feedback.logs")

Stream = Literal["assignments", "outcomes", "shadow"]

# The columns kept in Parquet, with their DuckDB types (the application is in the path).
ASSIGNMENT_COLUMNS: Mapping[str, str] = {
    "time": "TIMESTAMP",
    "request_id": "VARCHAR",
    "model": "VARCHAR",
    "version": "VARCHAR",
    "digest": "VARCHAR",
    "assignment": "VARCHAR",
    "bucket": "SMALLINT",
    "key_hash": "VARCHAR",
    "status": "SMALLINT",
    "replica": "VARCHAR",
    "latency_ms": "DOUBLE",
    "table": "VARCHAR",
    # the served prediction, logged only where the application declares a label outcome (null
    # otherwise, and absent from the segments written before it: the warehouse reads them as null)
    "prediction": "DOUBLE",
}
OUTCOME_COLUMNS: Mapping[str, str] = {
    "event_id": "VARCHAR",
    "request_id": "VARCHAR",
    "unit_hash": "VARCHAR",
    "outcome": "VARCHAR",
    "value": "DOUBLE",
    "time": "TIMESTAMP",
    "received": "TIMESTAMP",
}
# One line per request mirrored to a version in a shadow step (``catalog.serving.mirror``).
SHADOW_COLUMNS: Mapping[str, str] = {
    "time": "TIMESTAMP",
    "request_id": "VARCHAR",
    "model": "VARCHAR",
    "live_version": "VARCHAR",
    "mirrored_version": "VARCHAR",
    "result": "VARCHAR",  # agree, disagree, error (the copy got no usable answer) or dropped (not sent)
    "agree": "BOOLEAN",
    "outputs": "MAP(VARCHAR, BOOLEAN)",  # per output of the live answer: whether the copy's agrees
    "status": "SMALLINT",
    "latency_ms": "DOUBLE",  # the copy's, from sending it to its whole answer
    "error": "VARCHAR",
}
COLUMNS: Mapping[str, Mapping[str, str]] = {
    "assignments": ASSIGNMENT_COLUMNS,
    "outcomes": OUTCOME_COLUMNS,
    "shadow": SHADOW_COLUMNS,
}
# Keys added when a segment becomes Parquet (and computed for the open ones): 64-bit numbers of the
# ids, the low half of their md5, which the warehouse groups and joins by instead of the strings.
KEYS: Mapping[str, Mapping[str, str]] = {
    "assignments": {"request_key": "md5_number_lower(request_id)", "unit_key": "md5_number_lower(key_hash)"},
    "outcomes": {"request_key": "md5_number_lower(request_id)", "unit_key": "md5_number_lower(unit_hash)"},
    "shadow": {"request_key": "md5_number_lower(request_id)"},
}

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def stream_dir(root: Path, stream: Stream, application: str) -> Path:
    """The folder of one application's segments of ``stream``, under the analytics folder ``root``."""
    return root / stream / f"application={application}"


def partition_glob(root: str, stream: Stream, application: str) -> str:
    """The glob of an application's closed segments, for ``read_parquet`` (``root``: a folder or URL)."""
    return f"{root.rstrip('/')}/{stream}/application={application}/day=*/*.parquet"


def tables_log(root: Path, application: str) -> Path:
    """The log of the routing tables an application's routers installed (the weight epochs)."""
    return root / "tables" / f"application={application}" / "tables.jsonl"


def json_line(record: Mapping[str, Any]) -> str:
    """One record as a compact JSON line, newline included."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"


def append_table(
    root: Path,
    application: str,
    sha256: str,
    weights: Mapping[str, Mapping[str, int]],
    time: datetime | None = None,
) -> None:
    """Append ``{table, time, weights: {model: {version: weight}}}`` to the application's tables log
    (``time``: when the table was put in force, default now)."""
    path = tables_log(root, application)
    path.parent.mkdir(parents=True, exist_ok=True)
    moment = (time or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    line = json_line({"table": sha256, "time": stamp, "weights": weights}).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)  # one write of a short line: appends from several routers do not interleave
    finally:
        os.close(fd)


def complete_prefix(data: bytes, path: Path | str) -> bytes:
    """``data`` up to its last newline; a torn last line (no newline: its writer was killed mid-write)
    is left out with a warning, never read as data."""
    end = data.rfind(b"\n") + 1
    if end < len(data):
        log.warning("%s: skipped a torn last line (%d bytes without a newline)", path, len(data) - end)
    return data[:end]


def segment_name() -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}-{secrets.token_hex(3)}"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class _ConversionFailed(Exception):
    """DuckDB could not read a segment or write its Parquet file (logged; the segment stays)."""


def _convert(jsonl: Path, stream: Stream) -> None:
    """Write the locked, complete ``jsonl`` segment as ``<segment>.parquet`` (temp name, rename), then
    remove it. An empty segment is just removed."""
    import duckdb  # not at the top: the provider imports this module for its paths

    parquet = jsonl.with_suffix(".parquet")
    if jsonl.stat().st_size and not parquet.exists():
        temporary = jsonl.with_name(f".{jsonl.stem}.parquet.tmp")
        columns = COLUMNS[stream]
        types = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items()) + "}"
        selected = ", ".join([*(f'"{name}"' for name in columns), *(f"{e} AS {k}" for k, e in KEYS[stream].items())])
        source = str(jsonl).replace("'", "''")
        target = str(temporary).replace("'", "''")
        try:
            with duckdb.connect() as db:
                db.execute(
                    f"COPY (SELECT {selected} FROM read_json('{source}', format='newline_delimited', "
                    f"columns={types}, hive_partitioning=false)) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
                )
        except duckdb.Error as e:
            temporary.unlink(missing_ok=True)
            raise _ConversionFailed(str(e)) from e
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, parquet)
        fsync_dir(jsonl.parent)
    jsonl.unlink()
    fsync_dir(jsonl.parent)


def _seal(fd: int, jsonl: Path, stream: Stream) -> None:
    """Convert a segment whose lock ``fd`` holds; a torn last line is cut off first (its writer is dead)."""
    size = os.fstat(fd).st_size
    if size:
        os.lseek(fd, max(0, size - 1), os.SEEK_SET)
        if os.read(fd, 1) != b"\n":
            with open(jsonl, "rb") as handle:
                kept = len(complete_prefix(handle.read(), jsonl))
            os.ftruncate(fd, kept)
    _convert(jsonl, stream)


def seal_dead_segments(root: Path, stream: Stream, application: str) -> int:
    """Convert every ``.jsonl`` segment of ``application`` that no writer holds (its writer closed it
    before converting, or died); return how many. A failed conversion is logged and left for later."""
    sealed = 0
    for jsonl in sorted(stream_dir(root, stream, application).glob("day=*/*.jsonl")):
        try:
            fd = os.open(jsonl, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            if not _try_lock(fd) or not _same_file(fd, jsonl):
                continue
            _seal(fd, jsonl, stream)
            sealed += 1
        except (OSError, _ConversionFailed) as e:  # a broken segment must not stop a router from starting
            log.error("%s: cannot convert to Parquet: %s", jsonl, e)
        finally:
            os.close(fd)
    return sealed


@dataclass(frozen=True)
class OpenSegment:
    """A ``.jsonl`` segment to read: ``live`` when a writer holds it (a partial last line is being
    written, not torn)."""

    path: Path
    live: bool

    def complete_lines(self) -> bytes:
        """The segment's complete lines; a torn last line of a dead segment is skipped with a warning."""
        data = self.path.read_bytes()
        if self.live:
            return data[: data.rfind(b"\n") + 1]
        return complete_prefix(data, self.path)


def open_segments(root: Path, stream: Stream, application: str) -> Iterator[OpenSegment]:
    """The ``.jsonl`` segments of ``application`` that have no ``.parquet`` twin (a crash between
    converting and removing leaves both: the Parquet file is the one read)."""
    for jsonl in sorted(stream_dir(root, stream, application).glob("day=*/*.jsonl")):
        if jsonl.with_suffix(".parquet").exists():
            continue
        try:
            fd = os.open(jsonl, os.O_RDONLY)
        except FileNotFoundError:  # converted meanwhile: its Parquet file is read instead
            continue
        try:
            live = not _try_lock(fd)
        finally:
            os.close(fd)  # closing releases a lock taken here
        yield OpenSegment(jsonl, live)


class SegmentWriter:
    """Appends JSON lines to this writer's open segment of one application's ``stream``.

    ``append`` takes whole lines (newline-terminated) and the day they belong to (the record's UTC
    date: the assignment's time, the outcome's received time); a new day or a segment over
    ``max_bytes`` closes the segment (converted to Parquet) and opens the next. Thread-safe. Dead
    writers' segments are sealed when the writer is made.
    """

    def __init__(self, root: Path, stream: Stream, application: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.stream: Stream = stream
        self.application = application
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._day = ""
        self._size = 0
        stream_dir(root, stream, application).mkdir(parents=True, exist_ok=True)
        seal_dead_segments(root, stream, application)

    @property
    def path(self) -> Path | None:
        """The open segment, if any."""
        return self._path

    def append(self, text: str | bytes, day: str, *, fsync: bool = False) -> None:
        """Append ``text`` (whole lines) to the segment of ``day`` (YYYY-MM-DD); with ``fsync`` it is
        on disk when this returns, and so is the segment's name in its folder. OSError when it cannot
        be written (nothing is acknowledged, and no part of the lines stays)."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        with self._lock:
            if self._fd is not None and (day != self._day or self._size >= self.max_bytes):
                self._close_segment()
            if self._fd is None:
                self._open_segment(day, durable=fsync)
            assert self._fd is not None
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                if fsync:
                    os.fsync(self._fd)
            except OSError:  # e.g. disk full: no part of these lines stays in the segment
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                raise
            self._size += len(data)

    def close(self) -> None:
        """Close the open segment and convert it to Parquet."""
        with self._lock:
            if self._fd is not None:
                self._close_segment()

    def _open_segment(self, day: str, *, durable: bool = False) -> None:
        folder = stream_dir(self.root, self.stream, self.application) / f"day={day}"
        new_folder = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        if durable and new_folder:
            fsync_dir(folder.parent)
        while True:
            path = folder / f"{segment_name()}.jsonl"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):  # not taken for a dead, empty segment and removed meanwhile
                break
            os.close(fd)
        if durable:
            fsync_dir(folder)
        self._fd, self._path, self._day, self._size = fd, path, day, 0

    def _close_segment(self) -> None:
        fd, path = self._fd, self._path
        assert fd is not None and path is not None
        self._fd = self._path = None
        try:
            _seal(fd, path, self.stream)
        except (
            OSError,
            _ConversionFailed,
        ) as e:  # left as .jsonl: read as an open segment, converted by a later writer
            log.error("%s: cannot convert to Parquet: %s", path, e)
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
