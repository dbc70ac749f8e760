"""The fallback source: each router's own ``GET /metrics``, read where no Prometheus answers.

The routers of a stack are found in the scrape target files the provider writes
(``catalog.telemetry.prometheus``), so this needs no Prometheus and no provider. The text is parsed
with prometheus_client's parser; the numbers are those ``catalog.telemetry.promql`` asks
Prometheus for, computed the same way (``histogram_quantile``'s interpolation) but over each
counter's whole life: a router's counters start at 0 when it starts, so the window is not applied
(the reading's notes say so).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from catalog.telemetry.prometheus import MetricsDir, read_targets
from catalog.telemetry.reading import (
    LatencyHistogram,
    TelemetryReading,
    VersionTelemetry,
    bucket_quantile,
    limit_bucket,
)

__all__ = ["read_counters"]

SCRAPE_TIMEOUT = 5.0


def _scrape(url: str) -> str:
    import httpx

    with httpx.Client(timeout=SCRAPE_TIMEOUT, trust_env=False) as client:
        answer = client.get(f"{url}/metrics")
        answer.raise_for_status()
        return answer.text


def read_counters(
    run_dir: str | Path, application: str, model: str, latency_limit_ms: float | None = None
) -> TelemetryReading:
    """The binding's per-version numbers from the routers of ``application`` in ``run_dir``."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    metrics = MetricsDir(run_dir)
    routers = [
        url for url, labels in read_targets(metrics.router_targets(application)) if labels.get("role") == "router"
    ]
    queries = {
        "requests": f'modelcat_router_requests_total{{model="{model}",endpoint="infer"}} from GET <router>/metrics',
        "errors": f'modelcat_router_requests_total{{model="{model}",endpoint="infer",code=~"5.."}}',
        "latency": f'modelcat_router_request_duration_seconds_bucket{{model="{model}"}}',
    }
    if not routers:
        why = f"no router of {application} is recorded ({metrics.router_targets(application)} is absent)"
        return TelemetryReading("router-counters", queries=queries, notes=(f"no data: {why}",))
    requests: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    notes = [f"the routers' counters count since each router started: the window is not applied ({', '.join(routers)})"]
    for url in routers:
        try:
            text = _scrape(url)
        except httpx.HTTPError as e:
            notes.append(f"router {url} does not answer ({type(e).__name__}: {e})")
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if labels.get("model") != model or "version" not in labels:
                    continue
                version = labels["version"]
                if sample.name == "modelcat_router_requests_total" and labels.get("endpoint") == "infer":
                    requests[version] += sample.value
                    if labels.get("code", "").startswith("5"):
                        errors[version] += sample.value
                elif sample.name == "modelcat_router_request_duration_seconds_bucket":
                    buckets[version][float(labels["le"])] += sample.value
    bounds = {bound for per_version in buckets.values() for bound in per_version}
    bound = limit_bucket(bounds, latency_limit_ms / 1000) if latency_limit_ms is not None else None
    if latency_limit_ms is not None and bound is not None and bound * 1000 != latency_limit_ms:
        notes.append(
            f"requests over {latency_limit_ms:g} ms are counted from the histogram bucket at"
            f" {bound * 1000:g} ms (the next bound above the limit)"
        )
    versions = {}
    for version in sorted(requests):
        histogram = LatencyHistogram.of(buckets[version].items())

        def ms(q: float, histogram: LatencyHistogram = histogram) -> float | None:
            seconds = bucket_quantile(q, histogram)
            return None if seconds is None or math.isinf(seconds) else seconds * 1000

        per_bound = buckets[version]
        over = None
        if bound is not None and math.inf in per_bound:
            over = round(per_bound[math.inf] - per_bound.get(bound, 0.0))
        versions[version] = VersionTelemetry(
            version=version,
            requests=round(requests[version]),
            errors=round(errors[version]),
            latency_p50_ms=ms(0.5),
            latency_p99_ms=ms(0.99),
            over_latency_limit=over,
        )
    if not versions:
        notes.append(f"no data: the routers of {application} have no series of {model}")
    return TelemetryReading(
        "router-counters",
        versions=versions,
        queries=queries,
        notes=tuple(notes),
        latency_bound_ms=bound * 1000 if bound is not None else None,
    )
