"""What a shadow step's log says about one mirrored version, by DuckDB SQL (the shadow analysis' data).

The application's ``shadow`` log (``catalog.serving.mirror``: one line per mirrored request) is read
like the assignment log (``catalog.feedback.warehouse``: the closed Parquet segments and the complete
lines of the open ones) and counted for one model and mirrored version over ``[since, until)``:
copies by result, the agreement of each output, the copies' latency (p50, p99, and how many were
slower than a limit) and the live versions they were compared with.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from catalog.feedback.warehouse import (
    OPEN_SEGMENT_COPIES,
    _list_stream,
    _parse_time,
    _quote,
    _relation,
    _rfc3339,
    _timestamp,
    _with_schema,
)

__all__ = ["ShadowCounts", "observe_shadow"]


@dataclass(frozen=True)
class ShadowCounts:
    """One mirrored version's copies over a period. ``copies`` were sent (agreed + disagreed + errors);
    ``dropped`` were not (too many in flight). Latency is over the copies sent."""

    application: str
    model: str
    version: str
    since: str
    until: str
    agreed: int = 0
    disagreed: int = 0
    errors: int = 0
    dropped: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    over_latency_limit: int | None = None  # copies slower than the limit asked for (None: none asked)
    outputs: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # name -> (agreed, compared)
    live_versions: Mapping[str, int] = field(default_factory=dict)  # the versions that answered, and how often
    sql: Mapping[str, str] = field(default_factory=dict)

    @property
    def compared(self) -> int:
        return self.agreed + self.disagreed

    @property
    def copies(self) -> int:
        return self.agreed + self.disagreed + self.errors


def observe_shadow(
    roots: Path | Sequence[Path],
    application: str,
    model: str,
    version: str,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    latency_limit_ms: float | None = None,
) -> ShadowCounts:
    """The shadow log lines of ``model`` mirrored to ``version`` in ``application``, under the analytics
    folders ``roots``, between ``since`` and ``until`` (default: all, and now), counted."""
    folders = [roots] if isinstance(roots, Path) else list(roots)
    start = None if since is None else _parse_time(since)
    end = datetime.now(UTC) if until is None else _parse_time(until)
    period = [f"time < {_timestamp(end)}", f"model = {_quote(model)}", f"mirrored_version = {_quote(version)}"]
    if start is not None:
        period.append(f"time >= {_timestamp(start)}")
    over = (
        f"count(*) FILTER (WHERE latency_ms > {float(latency_limit_ms)!r})" if latency_limit_ms is not None else "NULL"
    )
    with tempfile.TemporaryDirectory(prefix="modelcat-shadow-") as scratch, duckdb.connect() as db:
        sources = _with_schema(db, _list_stream(folders, "shadow", application, Path(scratch)), "shadow")
        sql = {
            "shadow": f"CREATE TEMP VIEW shadow AS\n{_relation(sources, 'shadow')}",
            "copies": f"CREATE TEMP VIEW copies AS SELECT * FROM shadow WHERE {' AND '.join(period)}",
            "results": "SELECT result, count(*) FROM copies GROUP BY result",
            "latency": (
                "SELECT quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.99), "
                f"{over}, min(time) FROM copies WHERE result <> 'dropped'"
            ),
            "outputs": (
                "SELECT name, count(*) FILTER (WHERE agrees), count(*) FROM (SELECT unnest(map_keys(outputs)) AS name, "
                "unnest(map_values(outputs)) AS agrees FROM copies WHERE outputs IS NOT NULL) GROUP BY name"
            ),
            "live versions": "SELECT live_version, count(*) FROM copies GROUP BY live_version",
        }
        db.execute(sql["shadow"])
        db.execute(sql["copies"])
        results = {str(r): int(n) for r, n in db.execute(sql["results"]).fetchall()}
        p50, p99, slower, first = db.execute(sql["latency"]).fetchone() or (None,) * 4
        outputs = {str(name): (int(a), int(n)) for name, a, n in db.execute(sql["outputs"]).fetchall()}
        live = {str(v): int(n) for v, n in db.execute(sql["live versions"]).fetchall() if v is not None}
        # the open segments are read from copies in a scratch folder: named the same on every run
        stable = {name: text.replace(scratch, OPEN_SEGMENT_COPIES) for name, text in sql.items()}
    return ShadowCounts(
        application=application,
        model=model,
        version=version,
        since=_rfc3339(start) if start else (_rfc3339(first) if first else ""),
        until=_rfc3339(end),
        agreed=results.get("agree", 0),
        disagreed=results.get("disagree", 0),
        errors=results.get("error", 0),
        dropped=results.get("dropped", 0),
        latency_p50_ms=None if p50 is None else float(p50),
        latency_p99_ms=None if p99 is None else float(p99),
        over_latency_limit=None if latency_limit_ms is None else int(slower or 0),
        outputs=dict(sorted(outputs.items())),
        live_versions=dict(sorted(live.items())),
        sql=stable,
    )
