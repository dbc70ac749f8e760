"""Hand-built analysis values: a plan, observations and a decision for an A/B test of two versions
over three weight epochs, with a history of looks (the decision document's tests and the HTML's)."""

from __future__ import annotations

from dataclasses import replace

from catalog.analysis.data import (
    ArmData,
    ArmSnapshot,
    Decision,
    Epoch,
    EpochCheck,
    JoinCounts,
    MetricResult,
    Observations,
    OutcomeStats,
    VersionDecision,
    Vote,
)
from catalog.analysis.document import Look
from catalog.domain.analysis_plan import AnalysisPlan, OutcomeGuardrail, PrimaryOutcome

APP = "storefront"
TIMES = ("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z", "2026-12-04T00:00:00Z")

PLAN = AnalysisPlan(
    application=APP,
    environment="production",
    model="recommender",
    baseline="2.1.0",
    candidates=("2.2.0",),
    sticky=True,
    primary=PrimaryOutcome("conversion", "proportion", "increase", 0.01),
    max_error_rate=0.02,
    max_p99_latency_ms=400,
    outcome_guardrails=(OutcomeGuardrail("basket_value", "mean", 2.0),),
)


def _stats(n: int, rate: float) -> OutcomeStats:
    total = round(n * rate)
    return OutcomeStats(n, float(total), float(total))


def _basket(n: int, mean: float) -> OutcomeStats:
    return OutcomeStats(n, n * mean, n * (mean * mean + 4.0))


def _history(units: tuple[int, ...], rate: float, basket: float) -> tuple[ArmSnapshot, ...]:
    return tuple(
        ArmSnapshot(t, n, {"conversion": _stats(n, rate), "basket_value": _basket(n, basket)})
        for t, n in zip(TIMES[1:], units, strict=True)
    )


BASELINE_UNITS = (900, 1700, 2900)
CANDIDATE_UNITS = (100, 400, 2100)

OBSERVATIONS = Observations(
    application=APP,
    model="recommender",
    since=TIMES[0],
    until=TIMES[-1],
    arms=(
        ArmData(
            "2.1.0", 2900, 3100, 12, 41.5, 180.25, 20,
            {"conversion": _stats(2900, 0.10), "basket_value": _basket(2900, 31.0)},
            _history(BASELINE_UNITS, 0.10, 31.0),
        ),
        ArmData(
            "2.2.0", 2100, 2250, 9, 44.0, 210.123456789, 15,
            {"conversion": _stats(2100, 0.13), "basket_value": _basket(2100, 30.5)},
            _history(CANDIDATE_UNITS, 0.13, 30.5),
        ),
    ),
    epochs=(
        Epoch("a" * 64, TIMES[0], TIMES[1], {"2.1.0": 90, "2.2.0": 10}, {"2.1.0": 900, "2.2.0": 100}),
        Epoch("b" * 64, TIMES[1], TIMES[2], {"2.1.0": 75, "2.2.0": 25}, {"2.1.0": 800, "2.2.0": 300}),
        Epoch("c" * 64, TIMES[2], TIMES[3], {"2.1.0": 50, "2.2.0": 50}, {"2.1.0": 1200, "2.2.0": 1700}),
    ),
    joins=JoinCounts(events=5200, attributed=5000, duplicates=40, unattributed=120, out_of_window=40, late=7),
    telemetry_source="prometheus",
    queries={
        "requests": 'sum by (version) (increase(modelcat_router_requests_total{application="storefront"}[3d]))',
        "p99": "histogram_quantile(0.99, sum by (version, le) (rate(modelcat_router_request_duration_seconds_bucket[3d])))",
    },
    notes=("Prometheus at http://127.0.0.1:9090 answered for 2 versions",),
)  # fmt: skip


def _metrics(difference: float, half_width: float, vote: Vote = "pass") -> tuple[MetricResult, ...]:
    return (
        MetricResult(
            "conversion", "primary", vote, "2.2.0 converts better than 2.1.0 at alpha 0.05",
            estimate=difference, difference=difference,
            interval=(difference - half_width, difference + half_width), p_value=0.0021,
        ),
        MetricResult(
            "error_rate", "guardrail", "pass", "error rate below 2%", estimate=0.004,
            interval=(0.001, 0.009), p_value=1e-9, p_adjusted=3e-9,
        ),
        MetricResult(
            "basket_value", "guardrail", "pass", "basket value does not drop by more than 2",
            estimate=-0.5, difference=-0.5, interval=(-1.1, 0.1), p_value=0.0004, p_adjusted=0.0008,
        ),
    )  # fmt: skip


DECISION = Decision(
    epochs=tuple(EpochCheck(e, chi, p, False) for e, chi, p in zip(OBSERVATIONS.epochs, (0.0, 1.2, 0.8), (1.0, 0.27, 0.37), strict=True)),
    srm=False,
    versions=(
        VersionDecision(
            "2.2.0", "promote", ("conversion: +3 points [+1.2, +4.8] at alpha 0.05", "every guardrail passed"),
            _metrics(0.03, 0.018),
        ),
    ),
)  # fmt: skip

LOOKS = tuple(
    Look(
        t,
        Decision((), False, (VersionDecision("2.2.0", "hold", ("too few units",), _metrics(d, w, "hold")),)),
    )
    for t, d, w in zip(TIMES[1:], (0.05, 0.035, 0.03), (0.09, 0.04, 0.018), strict=True)
)

OFFLINE = {"2.1.0": {"ndcg@10": 0.41}, "2.2.0": {"ndcg@10": 0.452}}


def with_name(name: str) -> tuple[AnalysisPlan, Observations]:
    """The plan and observations with ``name`` as the application's name (escaping tests)."""
    return replace(PLAN, application=name), replace(OBSERVATIONS, application=name)
