"""One outcome event, in every format it arrives in: validated, then shaped as it is stored.

An event says what happened after a served request (a conversion, a basket's value, a fraud label
arriving days later)::

    {"event_id": "e-1", "request_id": "8f3a...", "outcome": "conversion", "value": 1,
     "time": "2026-12-06T10:00:00Z"}

- ``event_id`` (required): 1-128 printable characters; the same id sent twice is one event (a
  client that retries a batch sends the same ids again).
- ``request_id`` or ``unit`` (exactly one): the ``x-request-id`` the router answered with (1-128
  printable ASCII characters without spaces), or the sticky key's value (the user) for a sticky
  binding. A unit is hashed with ``catalog.domain.routing.key_hash`` before it is stored, as the
  router logs it: the raw value is never written anywhere.
- ``outcome`` (required): an outcome the application declares; its kind fixes ``value``:
  ``proportion`` and ``label`` take 0 or 1 (``true``/``false`` too), ``mean`` any finite number.
- ``time`` (optional): when it happened, RFC 3339 with an offset (``Z`` or ``+02:00``); default:
  when it was received. More than 5 minutes after it was received is refused.

We stamp ``received`` (UTC). The stored record (one JSON line in the outcome log, see
``catalog.feedback.ingest``) is ``{event_id, request_id, unit_hash, outcome, value, time,
received}``: ``unit_hash`` is the unit's ``key_hash``, as the assignment log's ``key_hash`` (the two
join on it), ``value`` a number,
``time`` and ``received`` in UTC with a ``Z``.

``validate_events`` checks a batch and returns the records to store, or raises ``EventsInvalid``
with every problem (each naming its event and field): a batch is stored whole or not at all.
``read_event_file`` reads JSON lines, CSV or Parquet into the same rows (a CSV cell is text:
``1``, ``0.5``, ``true`` are read as the number or boolean they spell, an empty cell as absent).
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from catalog.domain.analysis_plan import OutcomeKind
from catalog.domain.problems import Problem
from catalog.domain.routing import key_hash
from catalog.errors import EventsInvalid, UsageError
from catalog.wording import did_you_mean

__all__ = [
    "FIELDS",
    "FORMATS",
    "MAX_FUTURE",
    "OutcomeKind",
    "StoredEvent",
    "check_events",
    "format_of",
    "read_event_file",
    "utc_text",
    "validate_events",
]

StoredEvent = dict[str, Any]  # the record written: see the module docstring
Format = Literal["jsonl", "csv", "parquet"]

FIELDS = ("event_id", "request_id", "unit", "outcome", "value", "time")
FORMATS: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
MAX_FUTURE = timedelta(minutes=5)
MAX_ID = 128
MAX_UNIT = 1024
_FIELD_SET = frozenset(FIELDS)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})")
_UTC_SECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")  # stored as given
_REQUEST_ID = re.compile(r"[!-~]{1,128}")  # the router's x-request-id: printable ASCII, no space


def utc_text(moment: datetime) -> str:
    """``moment`` in UTC as RFC 3339 with microseconds and a ``Z``, the form every log stores."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _Problems:
    """The problems of one batch; ``where(row)`` says where a row came from (a line, an index)."""

    def __init__(self, source: str, where: Callable[[int], tuple[str, int]]) -> None:
        self.source = source
        self.where = where
        self.found: list[Problem] = []

    def add(self, row: int, field: str, message: str, hint: str = "") -> None:
        prefix, line = self.where(row)
        code = f"event.{field}" if field in _FIELD_SET else "event.schema"
        path = f"{prefix}.{field}" if prefix else field
        self.found.append(Problem(code, message, (row, field), hint=hint, path=path, file=self.source, line=line))


def _time(text: object, received: datetime) -> tuple[str | None, str]:
    """(the time to store for ``text``, or None; what is wrong with it): a UTC time with a ``Z`` as
    given, any other in UTC as ``utc_text`` writes it."""
    if isinstance(text, datetime):
        if text.tzinfo is None:
            return None, "a time needs a UTC offset (a Z or +hh:mm)"
        moment = text
    elif not isinstance(text, str) or not _RFC3339.fullmatch(text):
        return None, f"{text!r} is not an RFC 3339 time with an offset, e.g. 2026-12-06T10:00:00Z"
    else:
        try:
            moment = datetime.fromisoformat(text.upper())
        except ValueError as e:
            return None, f"{text!r} is not a valid time ({e})"
    ahead = moment - received
    if ahead > MAX_FUTURE:
        return None, f"{text} is {ahead.total_seconds() / 60:.0f} min after it was received (at most 5 min ahead)"
    return (text if isinstance(text, str) and _UTC_SECONDS.fullmatch(text) else utc_text(moment)), ""


def _value(value: object, kind: OutcomeKind) -> tuple[float | None, str]:
    """(the number to store, or None; what is wrong with ``value`` for an outcome of ``kind``)."""
    if value.__class__ is int and kind != "mean" and (value == 0 or value == 1):
        return float(value), ""  # an int: the common case first
    if isinstance(value, bool):
        if kind == "mean":
            return None, f"a mean outcome's value is a number, not {str(value).lower()}"
        return float(value), ""
    if isinstance(value, int | float | Decimal):
        number = float(value)
        if kind == "mean":
            return (number, "") if math.isfinite(number) else (None, f"{value} is not a finite number")
        if number in (0.0, 1.0):
            return number, ""
        return None, f"a {kind} outcome's value is 0 or 1 (or true/false), not {value}"
    wanted = "a finite number" if kind == "mean" else "0 or 1 (or true/false)"
    return None, f"a {kind} outcome's value is {wanted}, not {value!r}"


def validate_events(
    rows: Iterable[object],
    outcomes: Mapping[str, OutcomeKind],
    *,
    application: str,
    received: datetime | None = None,
    source: str = "",
) -> list[StoredEvent]:
    """The records to store for ``rows`` (a batch, e.g. a request's ``events``), or ``EventsInvalid``
    naming every bad event (``events[i]``) and field. ``outcomes``: what ``application`` declares."""
    stored, problems = check_events(rows, outcomes, application=application, received=received, source=source)
    if problems:
        raise EventsInvalid(source or "the events", problems)
    return stored


def check_events(
    rows: Iterable[object],
    outcomes: Mapping[str, OutcomeKind],
    *,
    application: str,
    received: datetime | None = None,
    source: str = "",
    where: Callable[[int], tuple[str, int]] | None = None,
) -> tuple[list[StoredEvent], list[Problem]]:
    """The records to store for the good ones of ``rows`` (events as mappings), and a problem for
    each bad event and field. ``where(i)`` gives row ``i``'s display path and line (default:
    ``events[i]``, no line); ``source`` names the file or request."""
    now = received or datetime.now(UTC)
    stamp = utc_text(now)
    problems = _Problems(source, where or (lambda i: (f"events[{i}]", 0)))
    add = problems.add
    declared = ", ".join(sorted(outcomes)) or "none"
    stored: list[StoredEvent] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            add(i, "event", f"an event is an object with {', '.join(FIELDS)}, not {type(row).__name__}")
            continue
        bad = len(problems.found)
        if not _FIELD_SET.issuperset(row):
            for name in row:
                if name not in _FIELD_SET:
                    hint = did_you_mean(str(name), FIELDS) + f"fields: {', '.join(FIELDS)}"
                    add(i, str(name), f"unknown field {name!r}", hint)
        event_id = row.get("event_id")
        if event_id.__class__ is not str or not 0 < len(event_id) <= MAX_ID or not event_id.isprintable():
            add(i, "event_id", f"event_id is 1-{MAX_ID} printable characters, not {event_id!r}")
        request_id, unit = row.get("request_id"), row.get("unit")
        hashed = None
        if request_id is not None:
            if unit is not None:
                add(i, "request_id", "an event names a request_id or a unit (exactly one), here both")
            elif request_id.__class__ is not str or not _REQUEST_ID.fullmatch(request_id):
                add(i, "request_id", f"request_id is 1-{MAX_ID} printable ASCII characters, not {request_id!r}")
        elif unit is None:
            add(i, "request_id", "an event names a request_id or a unit (exactly one), here neither")
        elif unit.__class__ is not str or not 0 < len(unit) <= MAX_UNIT:
            add(i, "unit", f"unit is the sticky key's value: 1-{MAX_UNIT} characters")
        else:
            hashed = key_hash(unit)
        outcome = row.get("outcome")
        kind = outcomes.get(outcome) if outcome.__class__ is str else None
        value: float | None = None
        if kind is None:
            hint = did_you_mean(outcome, list(outcomes)) if isinstance(outcome, str) else ""
            message = f"outcome {outcome!r} is not declared by application {application} (declared: {declared})"
            add(i, "outcome", message, hint + "declare it under the application's outcomes in models.yaml")
        elif "value" not in row:
            add(i, "value", "required field 'value' is missing")
        else:
            value, wrong = _value(row["value"], kind)
            if wrong:
                add(i, "value", wrong)
        time = row.get("time")
        at: str | None = stamp
        if time is not None:
            at, wrong = _time(time, now)
            if wrong:
                add(i, "time", wrong)
        if len(problems.found) == bad:
            stored.append(
                {
                    "event_id": event_id,
                    "request_id": request_id,
                    "unit_hash": hashed,
                    "outcome": outcome,
                    "value": value,
                    "time": at,
                    "received": stamp,
                }
            )
    return stored, problems.found


# -- files ----------------------------------------------------------------------------------------


def format_of(path: Path, given: str | None) -> Format:
    """The file's format: ``given``, else from its suffix."""
    if given:
        return given  # type: ignore[return-value]  # click's Choice keeps it to FORMATS' values
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise UsageError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}: give --input-format jsonl|csv|parquet"
        )
    return found


def _csv_cell(name: str, text: str) -> object:
    if text == "":
        return None
    if name != "value":
        return text
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


Rows = tuple[list[object], list[int]]  # a chunk of a file's rows, and the line (or Parquet row) of each
CHUNK = 65_536


def _jsonl_chunks(path: Path, problems: list[Problem]) -> Iterator[Rows]:
    import orjson

    with open(path, "rb") as handle:
        number = 0
        while block := list(itertools.islice(handle, CHUNK)):
            lines: list[bytes] = []
            numbers: list[int] = []
            for line in block:
                number += 1
                if line.strip():
                    lines.append(line)
                    numbers.append(number)
            try:  # one parse for the chunk; line by line only to find what is wrong
                rows: list[object] = orjson.loads(b"[" + b",".join(lines) + b"]")
            except orjson.JSONDecodeError:
                rows, kept = [], []
                for line, at in zip(lines, numbers, strict=True):
                    try:
                        rows.append(orjson.loads(line))
                        kept.append(at)
                    except orjson.JSONDecodeError as e:
                        problems.append(Problem("event.json", f"not valid JSON: {e}", file=str(path), line=at))
                numbers = kept
            yield rows, numbers


def _header_problems(path: Path, columns: Sequence[str]) -> list[Problem]:
    return [
        Problem(
            "event.schema",
            f"unknown column {name!r}",
            hint=did_you_mean(name, FIELDS) + f"columns: {', '.join(FIELDS)}",
            file=str(path),
            line=1,
            path=name,
        )
        for name in columns
        if name not in _FIELD_SET
    ]


def _csv_chunks(path: Path, problems: list[Problem]) -> Iterator[Rows]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        problems.extend(_header_problems(path, header))
        rows: list[object] = []
        numbers: list[int] = []
        for cells in reader:
            if not any(cells):
                continue
            if len(cells) != len(header):
                problems.append(
                    Problem(
                        "event.csv",
                        f"{len(cells)} cells where the header has {len(header)}",
                        file=str(path),
                        line=reader.line_num,
                    )
                )
                continue
            row = {
                name: cell
                for name, text in zip(header, cells, strict=True)
                if name in _FIELD_SET and (cell := _csv_cell(name, text)) is not None
            }
            rows.append(row)
            numbers.append(reader.line_num)
            if len(rows) == CHUNK:
                yield rows, numbers
                rows, numbers = [], []
        yield rows, numbers


def _parquet_chunks(path: Path, problems: list[Problem]) -> Iterator[Rows]:
    import duckdb

    try:
        with duckdb.connect() as db:
            cursor = db.execute("SELECT * FROM read_parquet(?)", [str(path)])
            columns = [column[0] for column in cursor.description or ()]
            problems.extend(_header_problems(path, columns))
            done = 0
            while batch := cursor.fetchmany(CHUNK):
                rows: list[object] = [
                    {
                        name: cell
                        for name, cell in zip(columns, row, strict=True)
                        if cell is not None and name in _FIELD_SET
                    }
                    for row in batch
                ]
                yield rows, list(range(done + 1, done + len(rows) + 1))
                done += len(rows)
    except duckdb.Error as e:
        raise UsageError(f"{path}: not a readable Parquet file: {e}") from None


def read_event_file(
    path: Path, fmt: Format, problems: list[Problem]
) -> Iterator[tuple[list[object], Callable[[int], tuple[str, int]]]]:
    """The rows of an event file in chunks, each with where its rows came from (``where(i)``: the
    display path and line, or the Parquet row); the problems found reading it (unparseable lines,
    unknown columns) are added to ``problems``."""
    chunks = {"jsonl": _jsonl_chunks, "csv": _csv_chunks, "parquet": _parquet_chunks}[fmt]
    try:
        for rows, numbers in chunks(path, problems):

            def where(i: int, numbers: list[int] = numbers) -> tuple[str, int]:
                return (f"row {numbers[i]}", 0) if fmt == "parquet" else ("", numbers[i])

            yield rows, where
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
