"""The observations of one binding's versions, from the assignment, outcome and table logs, by DuckDB SQL.

``observe`` reads the closed segments (Parquet, ``read_parquet(..., hive_partitioning=true)``) and
the complete lines of the open ones (``catalog.feedback.logs``), and answers per version: units,
requests, errors, latency, the outcomes' statistics over the version's units, the weight epochs,
and how the outcome events joined. The rules (docs/analysis.md, "Where the data lives"):

- Pinned requests are left out. The unit is the sticky key's hash in a sticky binding (a request
  without the key is its own unit), the request otherwise. A unit belongs to the version of its
  first assignment in the period (requests, errors and latency count each request where it was served).
- An event joins by ``request_id`` (to that request's unit), or by ``unit_hash`` to a unit of the
  binding when its ``time`` is within ``window_hours`` after the unit's first assignment (else it is
  out of window). Events with the same ``event_id`` count once (the first received). An event whose
  request or unit no assignment of the application knows is unattributed (kept, reported). An event
  of a known request or unit that is not this binding's over the period is ``elsewhere``.
- A unit's value of an outcome is the sum of its events' values, capped at 1 for proportions and
  labels; a unit without events counts 0.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from catalog.analysis.data import ArmData, ArmSnapshot, Epoch, JoinCounts, LiveMetric, Observations, OutcomeStats
from catalog.domain.live_metrics import LiveMetricName
from catalog.feedback.live import live_metrics_sql
from catalog.feedback.logs import (
    COLUMNS,
    KEYS,
    Stream,
    complete_prefix,
    open_segments,
    stream_dir,
    tables_log,
)

__all__ = ["HISTORY_POINTS", "observe"]

log = logging.getLogger("catalog.feedback.warehouse")

HISTORY_POINTS = 30  # cumulative snapshots per arm, evenly spaced over the data
CAPPED_KINDS = frozenset({"proportion", "label"})  # a unit's value is at most 1
LATE = timedelta(days=1)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _timestamp(moment: datetime) -> str:
    return f"TIMESTAMP {_quote(moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=' '))}"


def _rfc3339(moment: datetime) -> str:
    naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return naive.isoformat(timespec="microseconds") + "Z"


def _parse_time(value: datetime | str) -> datetime:
    """An aware datetime (UTC when none is given) from a datetime or an RFC 3339 string."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Sources:
    """The files of one stream, listed once so that a segment converted meanwhile is read once."""

    parquet: tuple[str, ...]
    jsonl: tuple[str, ...]  # snapshots of the open segments' complete lines
    absent: frozenset[str] = frozenset()  # columns no Parquet segment has (written before them): null


def _with_schema(db: duckdb.DuckDBPyConnection, sources: _Sources, stream: Stream) -> _Sources:
    """``sources`` knowing which of the stream's columns none of its Parquet segments has."""
    if not sources.parquet:
        return sources
    files = ", ".join(_quote(p) for p in sources.parquet)
    present = {name for (name,) in db.execute(f"SELECT DISTINCT name FROM parquet_schema([{files}])").fetchall()}
    return replace(sources, absent=frozenset(COLUMNS[stream]) - present)


def _list_stream(roots: Sequence[Path], stream: Stream, application: str, scratch: Path) -> _Sources:
    snapshots: dict[str, str] = {}
    for root in roots:
        for segment in open_segments(root, stream, application):
            try:
                data = segment.complete_lines()
            except FileNotFoundError:  # converted meanwhile: its Parquet file is listed below
                continue
            if data:
                copy = scratch / f"{stream}-{len(snapshots)}.jsonl"
                copy.write_bytes(data)
                snapshots[str(segment.path.with_suffix(""))] = str(copy)
    parquet = []
    for root in roots:
        for path in sorted(stream_dir(root, stream, application).glob("day=*/*.parquet")):
            snapshots.pop(str(path.with_suffix("")), None)  # converted after its snapshot: read once
            parquet.append(str(path))
    return _Sources(tuple(parquet), tuple(snapshots.values()))


def _relation(sources: _Sources, stream: Stream) -> str:
    """SQL of one stream: its Parquet segments and the open segments' lines, with the same columns."""
    columns, keys = COLUMNS[stream], KEYS[stream]
    parts = []
    if sources.parquet:
        files = ", ".join(_quote(p) for p in sources.parquet)
        read = [
            f'CAST(NULL AS {kind}) AS "{name}"' if name in sources.absent else f'"{name}"'
            for name, kind in columns.items()
        ]
        names = ", ".join([*read, *keys])
        parts.append(f"SELECT {names}, day FROM read_parquet([{files}], hive_partitioning=true, union_by_name=true)")
    if sources.jsonl:
        files = ", ".join(_quote(p) for p in sources.jsonl)
        types = "{" + ", ".join(f"{_quote(n)}: {_quote(t)}" for n, t in columns.items()) + "}"
        day = "received" if stream == "outcomes" else "time"
        computed = ", ".join(f"{expression} AS {key}" for key, expression in keys.items())
        parts.append(
            f"SELECT *, {computed}, CAST({day} AS DATE) AS day FROM read_json([{files}], "
            f"format='newline_delimited', columns={types}, hive_partitioning=false)"
        )
    if not parts:
        empty = [f'CAST(NULL AS {kind}) AS "{name}"' for name, kind in columns.items()]
        empty += [f"CAST(NULL AS UBIGINT) AS {key}" for key in keys]
        parts.append(f"SELECT {', '.join(empty)}, CAST(NULL AS DATE) AS day WHERE false")
    return "\nUNION ALL BY NAME\n".join(parts)


def _epochs_of(roots: Sequence[Path], application: str, model: str) -> list[tuple[datetime, str, dict[str, int]]]:
    """The tables logged for ``application``, in time order, consecutive equal weights of ``model``
    merged: (start, table sha256, {version: weight})."""
    entries = []
    for root in roots:
        path = tables_log(root, application)
        try:
            data = complete_prefix(path.read_bytes(), path)
        except FileNotFoundError:
            continue
        for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
            try:
                body = json.loads(line)
                weights = {str(v): int(w) for v, w in (body["weights"].get(model) or {}).items()}
                entries.append((_parse_time(str(body["time"])), str(body["table"]), weights))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                log.warning("%s:%d: not a table entry (%s): skipped", path, number, e)
    merged: list[tuple[datetime, str, dict[str, int]]] = []
    for start, table, weights in sorted((e for e in entries if e[2]), key=lambda e: e[0]):
        if not merged or merged[-1][2] != weights:
            merged.append((start, table, weights))
    return merged


@contextmanager
def _session(
    folders: Sequence[Path], application: str
) -> Iterator[tuple[duckdb.DuckDBPyConnection, str, _Sources, _Sources]]:
    """A DuckDB connection, a scratch folder and the application's assignment and outcome files."""
    with tempfile.TemporaryDirectory(prefix="modelcat-warehouse-") as scratch, duckdb.connect() as db:
        assignments = _with_schema(db, _list_stream(folders, "assignments", application, Path(scratch)), "assignments")
        events = _with_schema(db, _list_stream(folders, "outcomes", application, Path(scratch)), "outcomes")
        yield db, scratch, assignments, events


def observe(
    roots: Path | Sequence[Path],
    application: str,
    model: str,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    window_hours: float = 72,
    outcomes: Mapping[str, str] | None = None,
    sticky: bool = True,
    latency_limit_ms: float | None = None,
    live_metric: LiveMetricName | None = None,
) -> Observations:
    """Everything the logs under the analytics folders ``roots`` say about ``model``'s versions in
    ``application`` between ``since`` and ``until`` (default: all, and now). ``outcomes`` maps the
    application's declared outcome names to their kind (``proportion``, ``mean``, ``label``);
    ``latency_limit_ms`` (the p99 guardrail) counts the requests slower than it; ``live_metric`` (the
    binding's, ``catalog.domain.live_metrics.live_metric``) gives each arm its live metric on each
    label outcome (``catalog.feedback.live``)."""
    folders = [roots] if isinstance(roots, Path) else list(roots)
    declared = dict(outcomes or {})
    start = None if since is None else _parse_time(since)
    end = datetime.now(UTC) if until is None else _parse_time(until)
    with _session(folders, application) as (db, scratch, assignments, events):
        db.execute("SET preserve_insertion_order = false")  # no row order is relied on: less work
        query = _Query(db, sticky, start, end, model, window_hours, declared, latency_limit_ms, live_metric)
        observations = query.run(assignments, events, folders, application)
    # the open segments are read from copies in a scratch folder: name it the same on every run, so
    # the same data gives the same document
    stable = {name: text.replace(scratch, OPEN_SEGMENT_COPIES) for name, text in observations.sql.items()}
    return replace(observations, sql=stable)


OPEN_SEGMENT_COPIES = "<copies of the open segments>"


def live_metrics(
    roots: Path | Sequence[Path],
    application: str,
    model: str,
    live_metric: LiveMetricName,
    labels: Sequence[str],
    window_hours: float = 72,
    sticky: bool = True,
) -> dict[str, dict[str, LiveMetric]]:
    """Per version of ``model`` in ``application``, its ``live_metric`` on each of the ``labels``
    (label outcomes), over everything the logs hold; versions without a labelled prediction are
    left out. Only what the live metrics need is computed (``modelcat show``)."""
    folders = [roots] if isinstance(roots, Path) else list(roots)
    outcomes = dict.fromkeys(labels, "label")
    with _session(folders, application) as (db, _, assignments, events):
        query = _Query(db, sticky, None, datetime.now(UTC), model, window_hours, outcomes, None, live_metric)
        query.views(assignments, events, outcome_stats=False)
        return query.live()


class _Query:
    """One ``observe``: the views, then a handful of statements over them."""

    def __init__(
        self,
        db: duckdb.DuckDBPyConnection,
        sticky: bool,
        since: datetime | None,
        until: datetime,
        model: str,
        window_hours: float,
        outcomes: dict[str, str],
        latency_limit_ms: float | None,
        live_metric: LiveMetricName | None = None,
    ) -> None:
        self.db = db
        self.live_metric = live_metric
        self.unit = "request_key"
        self.sticky = sticky
        self.since = since
        self.until = until
        self.model = model
        self.window_hours = window_hours
        self.outcomes = outcomes
        self.limit = latency_limit_ms
        self.queries: dict[str, str] = {}

    def sql(self, name: str, text: str) -> list[tuple[Any, ...]]:
        self.queries[name] = text.strip()
        return self.db.execute(text).fetchall()

    def views(self, assignments: _Sources, events: _Sources, *, outcome_stats: bool = True) -> None:
        """Create the views and tables the statements read (``outcome_stats``: with the outcomes'
        running values, which the live metrics alone do not need)."""
        period = [f"time < {_timestamp(self.until)}", f"day <= DATE {_quote(self.until.date().isoformat())}"]
        if self.since is not None:
            period += [f"time >= {_timestamp(self.since)}", f"day >= DATE {_quote(self.since.date().isoformat())}"]
        ours = f"model = {_quote(self.model)} AND assignment <> 'pinned' AND {' AND '.join(period)}"
        if self.sticky:  # a request without the sticky key is a unit of its own
            unit = "coalesce(unit_key, request_key)"
            units = (
                "SELECT unit_key AS unit, arg_min(version, time) AS version, min(time) AS t0\n"
                "FROM binding WHERE unit_key IS NOT NULL GROUP BY 1\nUNION ALL\n"
                "SELECT request_key, arg_min(version, time), min(time)\n"
                "FROM binding WHERE unit_key IS NULL GROUP BY 1"
            )
        else:
            unit = "request_key"
            units = (
                "SELECT request_key AS unit, arg_min(version, time) AS version, min(time) AS t0\n"
                "FROM binding GROUP BY 1"
            )
        outcome_names = ", ".join(_quote(name) for name in self.outcomes) or "NULL"
        capped = ", ".join(_quote(n) for n, kind in self.outcomes.items() if kind in CAPPED_KINDS) or "NULL"
        views = {
            "assignments": f"CREATE TEMP VIEW assignments AS\n{_relation(assignments, 'assignments')}",
            "outcomes": f"CREATE TEMP VIEW outcomes AS\n{_relation(events, 'outcomes')}",
            "binding": f"""
CREATE TEMP VIEW binding AS SELECT * FROM assignments WHERE {ours}""",
            # Units and requests are known by 64-bit keys of their ids (catalog.feedback.logs.KEYS; a
            # collision among 10 M units has a chance of about 3e-6): they group and join far faster.
            "units": f"""
CREATE TEMP TABLE units AS
{units}""",
            # Each event once (the first received), with the number of its other copies; only the
            # repeated ids need the grouping.
            "repeated": f"""
CREATE TEMP TABLE repeated AS
SELECT event_id FROM outcomes WHERE outcome IN ({outcome_names}) GROUP BY event_id HAVING count(*) > 1""",
            "events": f"""
CREATE TEMP TABLE events AS
SELECT event_id, 0 AS copies, outcome, value, time, received, request_id, unit_hash, request_key, unit_key
FROM outcomes WHERE outcome IN ({outcome_names}) AND event_id NOT IN (SELECT event_id FROM repeated)
UNION ALL
SELECT event_id, count(*) - 1,
       arg_min(outcome, (received, time, value)), arg_min(value, (received, time, value)),
       arg_min(time, (received, time, value)), min(received),
       arg_min(request_id, (received, time, value)), arg_min(unit_hash, (received, time, value)),
       arg_min(request_key, (received, time, value)), arg_min(unit_key, (received, time, value))
FROM outcomes WHERE outcome IN ({outcome_names}) AND event_id IN (SELECT event_id FROM repeated)
GROUP BY event_id""",
            # Per request referenced by an event: the unit of this binding it was assigned to, if any.
            "requests": f"""
CREATE TEMP TABLE requests AS
SELECT request_key AS request, arg_min({unit}, time) FILTER (WHERE {ours}) AS unit FROM assignments
WHERE request_key IN (SELECT request_key FROM events WHERE request_id IS NOT NULL) GROUP BY request_key""",
            # The units of events that match no unit of the binding: known to the application?
            "known_units": """
CREATE TEMP TABLE known_units AS
SELECT DISTINCT unit_key AS key FROM assignments
WHERE unit_key IN (
  SELECT unit_key FROM events WHERE request_id IS NULL AND unit_key IS NOT NULL
  AND unit_key NOT IN (SELECT unit FROM units)
)""",
            "joined": f"""
CREATE TEMP TABLE joined AS
SELECT e.event_id, e.outcome, e.value, e.time, e.received, e.copies, e.request, u.unit, u.version, u.t0,
  CASE
    WHEN e.request_id IS NOT NULL THEN
      CASE WHEN r.unit IS NOT NULL THEN 'attributed' WHEN r.request IS NOT NULL THEN 'elsewhere'
           ELSE 'unattributed' END
    WHEN bu.unit IS NOT NULL THEN
      CASE WHEN e.time >= bu.t0 AND e.time <= bu.t0 + INTERVAL ({float(self.window_hours)}) HOUR
           THEN 'attributed' ELSE 'out_of_window' END
    WHEN k.key IS NOT NULL THEN 'elsewhere'
    ELSE 'unattributed'
  END AS joined
FROM (
  SELECT *, CASE WHEN request_id IS NULL THEN unit_key END AS unit,
         CASE WHEN request_id IS NOT NULL THEN request_key END AS request
  FROM events
) e
LEFT JOIN requests r ON e.request = r.request
LEFT JOIN units bu ON e.unit = bu.unit
LEFT JOIN known_units k ON e.unit = k.key
LEFT JOIN units u ON u.unit = coalesce(r.unit, bu.unit)""",
            # Each attributed event's change to its unit's capped running value: summed, the totals.
            "contributions": f"""
CREATE TEMP TABLE contributions AS
SELECT version, outcome, moment, value - lag(value, 1, 0) OVER w AS d_total,
       value * value - lag(value * value, 1, 0) OVER w AS d_sq
FROM (
  SELECT unit, version, outcome, greatest(time, t0) AS moment, event_id,
         CASE WHEN outcome IN ({capped}) THEN least(running, 1) ELSE running END AS value
  FROM (
    SELECT *, sum(value) OVER (PARTITION BY unit, outcome ORDER BY greatest(time, t0), event_id) AS running
    FROM joined WHERE joined = 'attributed'
  )
)
WINDOW w AS (PARTITION BY unit, outcome ORDER BY moment, event_id)""",
        }
        if not outcome_stats:
            del views["contributions"]
        self.unit = unit
        for name, text in views.items():
            self.sql(name, text)

    def live(self) -> dict[str, dict[str, LiveMetric]]:
        """Per version, per label outcome, the live metric (none asked: nothing)."""
        labels = [name for name, kind in self.outcomes.items() if kind == "label"]
        if self.live_metric is None or not labels:
            return {}
        return live_metrics_sql(self.sql, self.unit, self.live_metric, labels)

    def run(self, assignments: _Sources, events: _Sources, roots: Sequence[Path], application: str) -> Observations:
        self.views(assignments, events)
        arms = self._arms()
        joins = self._joins()
        epochs = self._epochs(roots, application)
        first = self.sql("first", "SELECT min(t0) FROM units")[0][0]
        return Observations(
            application=application,
            model=self.model,
            since=_rfc3339(self.since) if self.since else (_rfc3339(first) if first else ""),
            until=_rfc3339(self.until),
            arms=arms,
            epochs=epochs,
            joins=joins,
            telemetry_source="assignment-log",
            sql=self.queries,
        )

    def _arms(self) -> list[ArmData]:
        limit = f"count(*) FILTER (WHERE latency_ms > {float(self.limit)})" if self.limit is not None else "NULL"
        served = {
            row[0]: row[1:]
            for row in self.sql(
                "requests per version",
                f"""
SELECT version, count(*), count(*) FILTER (WHERE status >= 500),
       quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.99), {limit}
FROM binding GROUP BY version""",
            )
        }
        units = dict(self.sql("units per version", "SELECT version, count(*) FROM units GROUP BY version"))
        totals = {
            (version, outcome): (float(total), float(sq), int(n))
            for version, outcome, total, sq, n in self.sql(
                "outcomes per version",
                """
SELECT version, outcome, sum(d_total), sum(d_sq), count(*) FILTER (WHERE d_total <> 0 OR d_sq <> 0)
FROM contributions GROUP BY version, outcome""",
            )
        }
        counted = dict(
            self.sql(
                "attributed events per version",
                "SELECT version || '/' || outcome, count(*) FROM joined WHERE joined = 'attributed' GROUP BY ALL",
            )
        )
        history = self._history()
        live = self.live()
        labels = [name for name, kind in self.outcomes.items() if kind == "label"] if self.live_metric else []
        arms = []
        for version in sorted(set(served) | set(units)):
            requests, errors, p50, p99, over = served.get(version, (0, 0, None, None, None))
            n = int(units.get(version, 0))
            stats = {}
            for name in self.outcomes:
                total, sq, _ = totals.get((version, name), (0.0, 0.0, 0))
                stats[name] = OutcomeStats(n, total, sq, int(counted.get(f"{version}/{name}", 0)))
            arms.append(
                ArmData(
                    version=version,
                    units=n,
                    requests=int(requests),
                    errors=int(errors),
                    latency_p50_ms=None if p50 is None else float(p50),
                    latency_p99_ms=None if p99 is None else float(p99),
                    over_latency_limit=None if over is None else int(over),
                    outcomes=stats,
                    history=history.get(version, ()),
                    live_metrics={
                        name: live.get(version, {}).get(name, LiveMetric(self.live_metric, None, 0))
                        for name in labels
                        if self.live_metric is not None
                    },
                )
            )
        return arms

    def _history(self) -> dict[str, tuple[ArmSnapshot, ...]]:
        """Per version, HISTORY_POINTS cumulative snapshots evenly spaced from the first assignment to
        the last thing that happened (events at their time, not before their unit's assignment)."""
        ((first, last),) = self.sql(
            "history span", "SELECT min(t0), greatest(max(t0), (SELECT max(moment) FROM contributions)) FROM units"
        )
        if first is None:
            return {}
        step = max((last - first).total_seconds(), 1e-6) / HISTORY_POINTS
        index = (
            f"least({HISTORY_POINTS - 1}, greatest(0, "
            f"CAST(ceil(epoch({{at}} - TIMESTAMP {_quote(first.isoformat(sep=' '))}) / {step!r}) AS INTEGER) - 1))"
        )
        unit_rows = self.sql(
            "history units",
            f"SELECT version, {index.format(at='t0')} AS k, count(*) FROM units GROUP BY ALL",
        )
        outcome_rows = self.sql(
            "history outcomes",
            f"""
SELECT version, outcome, {index.format(at="moment")} AS k, sum(d_total), sum(d_sq), count(*)
FROM contributions GROUP BY ALL""",
        )
        events = self.sql(
            "history events",
            f"""
SELECT version, outcome, {index.format(at="greatest(time, t0)")} AS k, count(*)
FROM joined WHERE joined = 'attributed' GROUP BY ALL""",
        )
        versions = {row[0] for row in unit_rows}
        units = {(v, k): n for v, k, n in unit_rows}
        sums = {(v, o, k): (t, s) for v, o, k, t, s, _ in outcome_rows}
        counts = {(v, o, k): n for v, o, k, n in events}
        history = {}
        for version in sorted(versions):
            snapshots = []
            n, running = 0, {name: [0.0, 0.0, 0] for name in self.outcomes}
            for k in range(HISTORY_POINTS):
                n += units.get((version, k), 0)
                for name, acc in running.items():
                    total, sq = sums.get((version, name, k), (0.0, 0.0))
                    acc[0] += float(total)
                    acc[1] += float(sq)
                    acc[2] += counts.get((version, name, k), 0)
                moment = first + timedelta(seconds=step * (k + 1))
                stats = {name: OutcomeStats(n, acc[0], acc[1], int(acc[2])) for name, acc in running.items()}
                snapshots.append(ArmSnapshot(_rfc3339(moment), n, stats))
            history[version] = tuple(snapshots)
        return history

    def _joins(self) -> JoinCounts:
        counts = dict(self.sql("joins", "SELECT joined, count(*) FROM joined GROUP BY joined"))
        (duplicates,) = self.sql("duplicates", "SELECT coalesce(sum(copies), 0) FROM events")[0]
        (late,) = self.sql(
            "late events",
            f"""
SELECT count(*) FROM joined
WHERE joined = 'attributed' AND received > t0 + INTERVAL ({LATE.total_seconds()}) SECOND""",
        )[0]
        return JoinCounts(
            events=sum(counts.values()) + int(duplicates),
            attributed=counts.get("attributed", 0),
            duplicates=int(duplicates),
            unattributed=counts.get("unattributed", 0),
            out_of_window=counts.get("out_of_window", 0),
            late=int(late),
            elsewhere=counts.get("elsewhere", 0),
        )

    def _epochs(self, roots: Sequence[Path], application: str) -> list[Epoch]:
        merged = _epochs_of(roots, application, self.model)
        bounds = [(s, merged[i + 1][0] if i + 1 < len(merged) else self.until) for i, (s, _, _) in enumerate(merged)]
        kept = [
            i for i, (s, e) in enumerate(bounds) if e > s and (self.since is None or e > self.since) and s < self.until
        ]
        if not kept:
            return []
        values = ", ".join(f"({i}, {_timestamp(bounds[i][0])}, {_timestamp(bounds[i][1])})" for i in kept)
        observed: dict[int, dict[str, int]] = {}
        for i, version, n in self.sql(
            "units per epoch",
            f"""
SELECT e.i, u.version, count(*) FROM units u
JOIN (VALUES {values}) AS e(i, start_at, end_at) ON u.t0 >= e.start_at AND u.t0 < e.end_at
GROUP BY ALL""",
        ):
            observed.setdefault(int(i), {})[str(version)] = int(n)
        return [
            Epoch(
                table=merged[i][1],
                start=_rfc3339(bounds[i][0]),
                end=_rfc3339(bounds[i][1]),
                declared=dict(merged[i][2]),
                observed=dict(sorted(observed.get(i, {}).items())),
            )
            for i in kept
        ]
