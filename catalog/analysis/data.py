"""What an analysis reads: the observations of one binding's versions, whatever their source.

The data sources (``catalog.feedback.warehouse`` for assignments and outcomes, ``catalog.telemetry``
for request counts and latency) produce these; the statistics (``catalog.analysis.sequential``,
``srm``, ``verdict``) consume them. Pure values, no IO.

The unit of analysis is the unit of assignment: the sticky key's user (its ``key_hash``) in a sticky
binding, the request otherwise. An outcome's statistics are over every unit assigned to the arm: a
unit that reported nothing for an outcome counts as 0 (a shopper who did not convert), and a unit's
value is the sum of its events' values (a proportion outcome's sum is capped at 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from catalog.domain.live_metrics import LiveMetric  # a value of the domain: show has it too

__all__ = [
    "ArmData",
    "ArmSnapshot",
    "Decision",
    "Epoch",
    "EpochCheck",
    "JoinCounts",
    "LiveMetric",
    "MetricResult",
    "Observations",
    "OutcomeStats",
    "TelemetrySource",
    "Verdict",
    "VersionDecision",
    "Vote",
]

TelemetrySource = Literal["prometheus", "router-counters", "assignment-log"]


@dataclass(frozen=True)
class OutcomeStats:
    """Sufficient statistics of one outcome over one arm's units: count, sum and sum of squares."""

    n: int
    total: float
    total_sq: float
    events: int = 0  # the attributed events behind them (0: the outcome never arrived for these units)

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


@dataclass(frozen=True)
class ArmSnapshot:
    """One arm's cumulative statistics at ``time`` (RFC 3339, UTC): the points of the charts and of the
    sequential test, which is valid at every one of them."""

    time: str
    units: int
    outcomes: Mapping[str, OutcomeStats] = field(default_factory=dict)


@dataclass(frozen=True)
class ArmData:
    """One version's observations over the analysed period."""

    version: str
    units: int  # assigned units (users of a sticky binding, else requests), pinned requests left out
    requests: int  # inference requests answered (from the telemetry source)
    errors: int  # of which failed: HTTP 5xx, and 499 (client gone) is not counted as an error
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    # requests slower than the binding's max_p99_latency_ms guardrail (None: no guardrail, or the
    # source cannot tell); p99 <= limit  <=>  at most 1 % of requests over the limit
    over_latency_limit: int | None = None
    outcomes: Mapping[str, OutcomeStats] = field(default_factory=dict)
    history: Sequence[ArmSnapshot] = ()
    # per label outcome, where the binding's versions give a live metric (catalog.domain.live_metrics)
    live_metrics: Mapping[str, LiveMetric] = field(default_factory=dict)


@dataclass(frozen=True)
class Epoch:
    """A period with one routing table in force: its declared weights and the units it assigned."""

    table: str  # sha256 of the routing table (the assignment log's "table")
    start: str
    end: str
    declared: Mapping[str, int]  # version -> weight in percent (0-100) in that table
    observed: Mapping[str, int]  # version -> units first assigned during the epoch


@dataclass(frozen=True)
class JoinCounts:
    """How the outcome events were matched to assignments (documented in docs/analysis.md)."""

    events: int = 0  # events read, duplicates included
    attributed: int = 0  # joined to an assignment of this binding
    duplicates: int = 0  # same event_id seen before: counted once
    unattributed: int = 0  # no assignment with that request id / unit: kept, reported, not counted
    out_of_window: int = 0  # unit events later than the attribution window after the first assignment
    late: int = 0  # attributed, but arrived (received) more than a day after the assignment
    # known, but not this binding's over the period: another model's or a pinned request, or a unit or
    # request assigned outside since..until (events = duplicates + attributed + unattributed
    # + out_of_window + elsewhere)
    elsewhere: int = 0


@dataclass(frozen=True)
class Observations:
    application: str
    model: str
    since: str
    until: str
    arms: Sequence[ArmData]
    epochs: Sequence[Epoch] = ()
    joins: JoinCounts = JoinCounts()
    telemetry_source: TelemetrySource = "assignment-log"
    queries: Mapping[str, str] = field(default_factory=dict)  # what was asked of the telemetry source (PromQL)
    sql: Mapping[str, str] = field(default_factory=dict)  # what the warehouse asked DuckDB, by name
    notes: Sequence[str] = ()  # e.g. "Prometheus at http://127.0.0.1:9090 is down: read the routers' counters"


Vote = Literal["pass", "fail", "hold"]
Verdict = Literal["promote", "hold", "rollback"]


@dataclass(frozen=True)
class MetricResult:
    """One metric's comparison of a candidate with the baseline (or with a threshold) and its vote."""

    name: str  # "conversion", "error_rate", "p99_latency", ...
    kind: Literal["primary", "guardrail"]
    vote: Vote
    reason: str
    estimate: float | None = None  # the candidate's value (a rate) or its difference from the baseline
    difference: float | None = None  # candidate - baseline, where the metric compares two arms
    interval: tuple[float, float] | None = None  # the anytime-valid interval of `difference` (or of the rate)
    p_value: float | None = None  # anytime-valid
    p_adjusted: float | None = None  # Holm across the guardrails


@dataclass(frozen=True)
class EpochCheck:
    epoch: Epoch
    chi_square: float | None
    p_value: float | None
    srm: bool


@dataclass(frozen=True)
class VersionDecision:
    version: str
    verdict: Verdict
    reasons: tuple[str, ...]
    metrics: tuple[MetricResult, ...]


@dataclass(frozen=True)
class Decision:
    """The statistics' answer for one binding: SRM per epoch and a verdict per candidate version."""

    epochs: tuple[EpochCheck, ...]
    srm: bool  # any epoch flagged: every verdict is withheld (hold)
    versions: tuple[VersionDecision, ...]
