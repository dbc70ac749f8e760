"""What a telemetry source answers for one binding: per version its counts and latency, the source,
what was asked of it, and why it was (or was not) the first choice. Pure values, no IO.

The fields of ``VersionTelemetry`` are those of ``catalog.analysis.data.ArmData`` of the same
names; ``TelemetryReading.source``, ``queries`` and ``notes`` go to ``Observations``'
``telemetry_source``, ``queries`` and ``notes``. A version without a series has no entry: the
analysis holds on it ("no data"), and ``no_data`` says that no version has one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["LatencyHistogram", "Source", "TelemetryReading", "VersionTelemetry", "bucket_quantile", "limit_bucket"]

Source = Literal["prometheus", "router-counters"]


@dataclass(frozen=True)
class VersionTelemetry:
    version: str
    requests: int  # inference requests answered
    errors: int  # of which 5xx (499, the caller gone, is no error)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    over_latency_limit: int | None = None  # slower than the limit's bucket bound (None: no limit asked)


@dataclass(frozen=True)
class TelemetryReading:
    source: Source
    versions: Mapping[str, VersionTelemetry] = field(default_factory=dict)
    queries: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    latency_bound_ms: float | None = None  # the histogram bucket bound the over-limit counts use

    @property
    def no_data(self) -> bool:
        """No version has a series: every metric of this source holds."""
        return not self.versions


@dataclass(frozen=True)
class LatencyHistogram:
    """A cumulative histogram: (upper bound in seconds, count of observations <= it), +Inf last."""

    buckets: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[float, float]]) -> LatencyHistogram:
        return cls(tuple(sorted(pairs)))


def bucket_quantile(q: float, histogram: LatencyHistogram) -> float | None:
    """The ``q`` quantile as PromQL's ``histogram_quantile`` computes it (linear within a bucket;
    the highest finite bound when it falls in the +Inf bucket); None where PromQL gives NaN."""
    buckets = list(histogram.buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return None
    counts: list[float] = []
    for _, count in buckets:  # PromQL's ensureMonotonic
        counts.append(max(count, counts[-1]) if counts else count)
    observations = counts[-1]
    if observations == 0:
        return None
    rank = q * observations
    b = next((i for i in range(len(buckets) - 1) if counts[i] >= rank), len(buckets) - 1)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], counts[b]
    if b > 0:
        start = buckets[b - 1][0]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def limit_bucket(bounds: Iterable[float], limit_seconds: float) -> float | None:
    """The bucket bound at ``limit_seconds`` or, where no bound is exactly there, the next above
    (finite); None if every finite bound is below the limit."""
    above = [b for b in bounds if b >= limit_seconds and not math.isinf(b)]
    return min(above) if above else None
