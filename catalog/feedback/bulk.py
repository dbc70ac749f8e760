"""The fast path of ``modelcat feedback import`` for JSON lines: DuckDB checks and shapes a whole file in SQL.

The rules of an event are ``catalog.feedback.events``'; this module applies a stricter reading of
them, column by column, and vouches only for a file whose every event it can tell is good: an
object of the known fields, an ASCII ``event_id``, a ``request_id`` or a ``unit``, a declared
outcome with a value of its kind, and no time or a time in ``Z`` or with an offset (up to
microseconds) at most 5 minutes ahead. For such a file it writes exactly the records
``check_events`` would (the unit hashed with the same ``key_hash``) as one new segment of the
outcome log: written under a hidden name, fsynced, then renamed into place, so the log gains the
whole file or nothing. A file it cannot vouch for (a bad event, a line that is not JSON, anything
unusual) is left to the row-by-row path, which names every bad line and field; ``None`` says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.domain.analysis_plan import OutcomeKind
from catalog.domain.routing import KEY_HASH_DOMAIN
from catalog.errors import DiskFull
from catalog.feedback.events import FIELDS, MAX_FUTURE, MAX_ID, MAX_UNIT, utc_text
from catalog.files import fsync_dir

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

__all__ = ["count_duplicates", "import_jsonl"]

_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z"  # stored as given, as events.py does

_CHECKED = f"""
WITH raw AS (
    SELECT json AS j, json_extract(json, ['$.event_id', '$.request_id', '$.unit', '$.outcome', '$.value', '$.time']) AS x
    FROM read_json_objects($file, format='newline_delimited')
), fields AS (
    SELECT
        json_type(j) AS t_row, json_keys(j) AS keys,
        json_type(x[1]) AS t_id, x[1]->>'$' AS event_id,
        coalesce(json_type(x[2]), 'NULL') AS t_request, x[2]->>'$' AS request_id,
        coalesce(json_type(x[3]), 'NULL') AS t_unit, x[3]->>'$' AS unit,
        json_type(x[4]) AS t_outcome, x[4]->>'$' AS outcome,
        json_type(x[5]) AS t_value, x[5]->>'$' AS value_text,
        coalesce(json_type(x[6]), 'NULL') AS t_time, x[6]->>'$' AS time_text
    FROM raw
), typed AS (
    SELECT f.*, d.kind,
        CASE WHEN t_value = 'BOOLEAN' THEN CAST(value_text = 'true' AS DOUBLE)
             WHEN t_value IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST(value_text AS DOUBLE) END AS value,
        t_time = 'VARCHAR' AND regexp_full_match(time_text, '{_UTC}') AS as_given,
        CASE WHEN t_time = 'VARCHAR' AND regexp_full_match(time_text,
                  '\\d{{4}}-\\d{{2}}-\\d{{2}}T\\d{{2}}:\\d{{2}}:\\d{{2}}(\\.\\d{{1,6}})?(Z|[+-]\\d{{2}}:\\d{{2}})')
             THEN TRY_CAST(time_text AS TIMESTAMPTZ) END AS moment
    FROM fields f LEFT JOIN declared d ON d.name = f.outcome AND f.t_outcome = 'VARCHAR'
)
SELECT
    (t_row = 'OBJECT' AND len(list_filter(keys, lambda k: NOT list_contains($fields, k))) = 0
     AND t_id = 'VARCHAR' AND length(event_id) BETWEEN 1 AND {MAX_ID} AND regexp_full_match(event_id, '[ -~]+')
     AND ((t_request = 'VARCHAR' AND t_unit = 'NULL' AND regexp_full_match(request_id, '[!-~]{{1,{MAX_ID}}}'))
          OR (t_request = 'NULL' AND t_unit = 'VARCHAR' AND strlen(unit) BETWEEN 1 AND {MAX_UNIT}))
     AND kind IS NOT NULL AND value IS NOT NULL AND isfinite(value)
     AND (kind = 'mean' AND t_value <> 'BOOLEAN' OR kind <> 'mean' AND value IN (0, 1))
     AND (t_time = 'NULL' OR moment IS NOT NULL AND moment <= $latest AND year(moment) >= 1000)) AS good,
    event_id,
    CASE WHEN t_request = 'VARCHAR' THEN request_id END AS request_id,
    CASE WHEN t_unit = 'VARCHAR' THEN substr(sha256(from_hex($domain) || encode(unit)), 1, 32) END AS unit_hash,
    outcome,
    value,
    CASE WHEN t_time = 'NULL' THEN $received
         WHEN as_given THEN time_text
         ELSE strftime(timezone('UTC', moment), '%Y-%m-%dT%H:%M:%S.%fZ') END AS time,
    $received AS received
FROM typed
"""


def _disk_full(error: Exception) -> bool:
    text = str(error).lower()
    return any(sign in text for sign in ("no space left", "file too large", "disk quota"))


def import_jsonl(
    file: Path, segment: Path, outcomes: Mapping[str, OutcomeKind], received: datetime, stored: list[str]
) -> tuple[int, int] | None:
    """Check the JSON lines ``file`` and, when every event is good, write their records as the new
    segment ``segment``; (events written, duplicates of ``stored`` segments or within the file).
    None when the file needs the row-by-row path (nothing is written then)."""
    import duckdb

    hidden = segment.with_name(f".{segment.name}.tmp")
    with duckdb.connect() as db:
        db.execute("CREATE TEMP TABLE declared (name VARCHAR, kind VARCHAR)")
        if outcomes:
            db.executemany("INSERT INTO declared VALUES (?, ?)", list(outcomes.items()))
        parameters = {
            "file": str(file),
            "fields": list(FIELDS),
            "latest": received + MAX_FUTURE,
            "received": utc_text(received),
            "domain": KEY_HASH_DOMAIN.hex(),
        }
        try:
            db.execute(f"CREATE TEMP TABLE events AS {_CHECKED}", parameters)
        except duckdb.Error:
            return None  # not JSON lines DuckDB reads: the row-by-row path says where
        row = db.execute("SELECT count(*), count(*) FILTER (good) FROM events").fetchone()
        total, good = row if row else (0, 0)
        if total == 0 or good != total:
            return None
        segment.parent.mkdir(parents=True, exist_ok=True)
        try:
            db.execute("COPY (SELECT * EXCLUDE (good) FROM events) TO $target (FORMAT json)", {"target": str(hidden)})
            with open(hidden, "rb") as handle:
                os.fsync(handle.fileno())
            duplicates = count_duplicates(db, stored)
            os.rename(hidden, segment)
            fsync_dir(segment.parent)
        except (duckdb.Error, OSError) as e:
            hidden.unlink(missing_ok=True)
            if isinstance(e, OSError) and e.errno in DiskFull.ERRNOS or _disk_full(e):
                raise DiskFull(str(segment.parent), e if isinstance(e, OSError) else OSError(28, str(e))) from e
            raise
    return total, duplicates


def count_duplicates(db: DuckDBPyConnection, stored: list[str]) -> int:
    """Events of the table ``events`` (``event_id``) of ``db`` whose id repeats an earlier one or is
    in one of the ``stored`` segments (JSON lines, a torn last line skipped; or Parquet, closed)."""
    row = db.execute("SELECT count(*) - count(DISTINCT event_id) FROM events").fetchone()
    within = int(row[0]) if row else 0
    jsonl = [path for path in stored if path.endswith(".jsonl")]
    parquet = [path for path in stored if path.endswith(".parquet")]
    sources = []
    if jsonl:
        sources.append(
            "SELECT event_id FROM read_json($jsonl, format='newline_delimited', ignore_errors=true, "
            "columns={event_id: 'VARCHAR'})"
        )
    if parquet:
        sources.append("SELECT event_id FROM read_parquet($parquet)")
    if not sources:
        return within
    parameters = {name: files for name, files in (("jsonl", jsonl), ("parquet", parquet)) if files}
    row = db.execute(
        "SELECT count(*) FROM (SELECT DISTINCT event_id FROM events) WHERE event_id IN ("
        + " UNION ALL ".join(sources)
        + ")",
        parameters,
    ).fetchone()
    return within + (int(row[0]) if row else 0)
