"""Per-version requests, errors and latency of one binding over [since, until], in PromQL.

The queries are the ones an operator would type into the local Prometheus (they are shown in
``modelcat analyze`` and docs/analysis.md). For the series of ``application`` and ``model``
(``endpoint="infer"``: the inference requests; the router's own counters and histogram,
``catalog.serving.router_telemetry``), each evaluated at ``until``:

- a counter's count in the window is its value at ``until`` minus its value at ``since``
  (``offset``), a series born inside the window counting from 0 (``or ... * 0``). ``increase()``
  is not used: it extrapolates to the window's edges (fractions of a request) and misses what a
  series counted before its first scrape, so it would not agree with the routers' own counters;
- requests: ``modelcat_router_requests_total``; errors: those with ``code=~"5.."``;
- p50/p99: ``histogram_quantile`` over the window's ``..._duration_seconds_bucket`` counts by ``le``;
- over the latency limit: the window's ``_count`` minus its bucket at the limit's bound: the
  bucket whose bound is the limit, or the next bound above it (those between the limit and that
  bound are not counted as over; the reading says which bound it used).

``read_telemetry`` tries the stack's Prometheus and falls back to the routers' ``/metrics``
(``catalog.telemetry.counters``) where none is recorded, it does not answer, or it has no series.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from catalog.errors import ModelcatError
from catalog.telemetry.prometheus import MetricsDir, PrometheusRecord
from catalog.telemetry.reading import TelemetryReading, VersionTelemetry, limit_bucket

__all__ = ["PrometheusUnavailable", "binding_queries", "read_prometheus", "read_telemetry"]

REQUESTS = "modelcat_router_requests_total"
LATENCY = "modelcat_router_request_duration_seconds"
QUERY_TIMEOUT = 10.0


class PrometheusUnavailable(ModelcatError):
    """Prometheus did not answer a query (down, or an error): the caller falls back."""


def _selector(application: str, model: str, **extra: str) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    matchers = [f"application={quoted(application)}", f"model={quoted(model)}"]
    matchers += [f"{name}{'=~' if name == 'code' else '='}{quoted(value)}" for name, value in extra.items()]
    return "{" + ",".join(matchers) + "}"


def _in_window(series: str, window: str) -> str:
    """PromQL for what ``series`` counted in the ``window`` before the evaluation time."""
    return f"({series} - ({series} offset {window} or {series} * 0))"


def _window(since: datetime, until: datetime) -> str:
    seconds = math.ceil((until - since).total_seconds())
    if seconds <= 0:
        raise ModelcatError(f"the window ends ({until.isoformat()}) before it starts ({since.isoformat()})")
    return f"{seconds}s"


def binding_queries(
    application: str, model: str, since: datetime, until: datetime, bound_le: str | None = None
) -> dict[str, str]:
    """The PromQL of each number, evaluated at ``until``; ``over_latency_limit`` with ``bound_le``
    (the ``le`` label of the limit's bucket)."""
    w = _window(since, until)
    infer = _selector(application, model, endpoint="infer")
    failed = _selector(application, model, endpoint="infer", code="5..")
    histogram = _selector(application, model)
    buckets = f"sum by (version, le) {_in_window(LATENCY + '_bucket' + histogram, w)}"
    queries = {
        "requests": f"sum by (version) {_in_window(REQUESTS + infer, w)}",
        "errors": f"sum by (version) {_in_window(REQUESTS + failed, w)}",
        "latency_p50": f"histogram_quantile(0.5, {buckets})",
        "latency_p99": f"histogram_quantile(0.99, {buckets})",
    }
    if bound_le is not None:
        at_bound = _selector(application, model, le=bound_le)
        queries["over_latency_limit"] = (
            f"sum by (version) {_in_window(LATENCY + '_count' + histogram, w)}"
            f" - sum by (version) {_in_window(LATENCY + '_bucket' + at_bound, w)}"
        )
    return queries


def _query(url: str, promql: str, at: datetime) -> list[dict[str, Any]]:
    import httpx

    try:
        with httpx.Client(timeout=QUERY_TIMEOUT, trust_env=False) as client:
            answer = client.get(f"{url}/api/v1/query", params={"query": promql, "time": f"{at.timestamp():.3f}"})
        body = answer.json()
    except (httpx.HTTPError, ValueError) as e:
        raise PrometheusUnavailable(f"Prometheus at {url} does not answer ({type(e).__name__}: {e})") from e
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else body
        raise PrometheusUnavailable(f"Prometheus at {url} refused a query (HTTP {answer.status_code}: {error})")
    result = (body.get("data") or {}).get("result")
    return result if isinstance(result, list) else []


def _by_version(result: list[dict[str, Any]]) -> dict[str, float]:
    values = {}
    for item in result:
        version = (item.get("metric") or {}).get("version")
        value = float(item["value"][1])
        if version is not None and not math.isnan(value):
            values[version] = value
    return values


def _le_seconds(le: str) -> float:
    return math.inf if le == "+Inf" else float(le)


def read_prometheus(
    url: str, application: str, model: str, since: datetime, until: datetime, latency_limit_ms: float | None = None
) -> TelemetryReading:
    """The binding's numbers from the Prometheus at ``url`` (no versions: no series in the window).
    Raises PrometheusUnavailable when it does not answer."""
    bound_le, notes = None, []
    if latency_limit_ms is not None:
        bucket_les = "group by (le) (" + LATENCY + "_bucket" + _selector(application, model) + ")"
        les = {item["metric"]["le"] for item in _query(url, bucket_les, until) if "le" in item.get("metric", {})}
        bound = limit_bucket((_le_seconds(le) for le in les), latency_limit_ms / 1000)
        bound_le = next((le for le in les if _le_seconds(le) == bound), None)
        if bound is None:
            notes.append(f"no latency bucket bound at or above {latency_limit_ms:g} ms: over-limit counts unknown")
        elif bound * 1000 != latency_limit_ms:
            notes.append(
                f"requests over {latency_limit_ms:g} ms are counted from the histogram bucket at"
                f" {bound * 1000:g} ms (the next bound above the limit)"
            )
    queries = binding_queries(application, model, since, until, bound_le)
    answers = {name: _by_version(_query(url, promql, until)) for name, promql in queries.items()}

    def latency(name: str, version: str) -> float | None:
        seconds = answers[name].get(version)
        return None if seconds is None or math.isinf(seconds) else seconds * 1000

    versions = {}
    for version, requests in sorted(answers["requests"].items()):
        over = answers.get("over_latency_limit", {}).get(version)
        versions[version] = VersionTelemetry(
            version=version,
            requests=round(requests),
            errors=round(answers["errors"].get(version, 0.0)),
            latency_p50_ms=latency("latency_p50", version),
            latency_p99_ms=latency("latency_p99", version),
            over_latency_limit=round(over) if over is not None else None,
        )
    return TelemetryReading(
        source="prometheus",
        versions=versions,
        queries=queries,
        notes=tuple(notes),
        latency_bound_ms=float(bound_le) * 1000 if bound_le not in (None, "+Inf") else None,
    )


def read_telemetry(
    run_dir: str | Path,
    application: str,
    model: str,
    since: datetime,
    until: datetime,
    latency_limit_ms: float | None = None,
) -> TelemetryReading:
    """The binding's per-version numbers from the stack's Prometheus, or from its routers' own
    counters where that Prometheus is not recorded, does not answer or has no series; the notes
    say which and why. ``reading.no_data`` when neither has a series."""
    from catalog.telemetry.counters import read_counters

    metrics = MetricsDir(run_dir)
    record = PrometheusRecord.read(metrics)
    if record is None:
        why = f"no Prometheus is recorded for this stack ({metrics.record} is absent)"
    else:
        try:
            reading = read_prometheus(record.url, application, model, since, until, latency_limit_ms)
        except PrometheusUnavailable as e:
            why = str(e)
        else:
            if not reading.no_data:
                return reading
            why = f"Prometheus at {record.url} has no series of {application}/{model} in the window"
    fallback = read_counters(run_dir, application, model, latency_limit_ms)
    return replace(fallback, notes=(f"{why}: read the routers' own counters", *fallback.notes))
