"""Assignment, outcome and table logs written the way the router and the feedback endpoint write them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from catalog.feedback.logs import SegmentWriter, Stream, json_line, tables_log

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def at(hours: float = 0, days: float = 0) -> str:
    """RFC 3339 (UTC, microseconds, Z) of T0 plus an offset."""
    moment = T0 + timedelta(hours=hours, days=days)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def assignment(
    request_id: str,
    version: str,
    time: str,
    unit: str | None = None,
    *,
    model: str = "rec",
    how: str | None = None,
    status: int = 200,
    latency_ms: float = 5.0,
    table: str = "t1",
) -> dict[str, Any]:
    return {
        "time": time,
        "request_id": request_id,
        "application": "shop",
        "model": model,
        "version": version,
        "digest": f"sha256:{version}",
        "assignment": how or ("sticky" if unit else "random"),
        "bucket": 7 if unit else None,
        "key_hash": unit,
        "status": status,
        "replica": "http://127.0.0.1:1",
        "latency_ms": latency_ms,
        "table": table,
    }


def event(
    event_id: str,
    outcome: str,
    value: float,
    time: str,
    *,
    request_id: str | None = None,
    unit: str | None = None,
    received: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "request_id": request_id,
        "unit_hash": unit,
        "outcome": outcome,
        "value": value,
        "time": time,
        "received": received or time,
    }


def write_records(
    root: Path, stream: Stream, records: Iterable[Mapping[str, Any]], *, day_of: str = "time"
) -> SegmentWriter:
    """Append ``records`` through one writer: a segment per day, the earlier days' closed (Parquet),
    the last one left open (.jsonl, locked) until the writer returned is closed."""
    writer = SegmentWriter(root, stream, "shop")
    for record in records:
        writer.append(json_line(record), str(record[day_of])[:10])
    return writer


def write_stack_logs(
    catalog_path: Path,
    application: str,
    assignments: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    environment: str = "production",
) -> Path:
    """Assignments and outcome events in the logs of ``application``'s local stack beside the catalog
    at ``catalog_path``, closed (Parquet); returns the stack's analytics folder."""
    from catalog.layout import analytics_dir, run_dir, stack_name, state_root

    analytics = analytics_dir(run_dir(state_root(catalog_path), stack_name(environment, "local")))
    for stream, records, day in (("assignments", assignments, "time"), ("outcomes", events, "received")):
        writer = SegmentWriter(analytics, stream, application)
        for record in records:
            writer.append(json_line(record), str(record[day])[:10])
        writer.close()
    return analytics


def write_tables(root: Path, entries: Iterable[tuple[str, str, Mapping[str, Mapping[str, int]]]]) -> None:
    """Table log lines (sha256, time, weights) as routers append them."""
    path = tables_log(root, "shop")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(
            json_line({"table": table, "time": time, "weights": weights}) for table, time, weights in entries
        )
