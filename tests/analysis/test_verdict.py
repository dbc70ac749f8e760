"""The votes and the verdict: each rule of the issue with its own test (the statistics behind them are
proven by simulation in test_sequential.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from catalog.analysis.data import ArmData, Epoch, Observations, OutcomeStats
from catalog.analysis.sequential import rate_against_limit
from catalog.analysis.verdict import decide, holm
from catalog.domain.analysis_plan import AnalysisPlan, OutcomeGuardrail, PrimaryOutcome

CONVERSION = PrimaryOutcome(outcome="conversion", kind="proportion", direction="increase", mde=0.01)


def _plan(**fields: object) -> AnalysisPlan:
    values: dict[str, object] = {
        "application": "storefront",
        "environment": "local",
        "model": "recommender",
        "baseline": "2.1.0",
        "candidates": ("2.2.0",),
        "sticky": True,
        "primary": CONVERSION,
    }
    values.update(fields)
    return AnalysisPlan(**values)  # type: ignore[arg-type]


def _proportion(units: int, hits: int) -> OutcomeStats:
    return OutcomeStats(units, float(hits), float(hits))


def _arm(version: str, units: int, conversions: int, **fields: object) -> ArmData:
    values: dict[str, object] = {
        "version": version,
        "units": units,
        "requests": units,
        "errors": 0,
        "over_latency_limit": 0,
        "outcomes": {"conversion": _proportion(units, conversions)},
    }
    values.update(fields)
    return ArmData(**values)  # type: ignore[arg-type]


def _observe(*arms: ArmData, epochs: tuple[Epoch, ...] = ()) -> Observations:
    return Observations("storefront", "recommender", "2026-12-01T00:00:00Z", "2026-12-08T00:00:00Z", arms, epochs)


def _only(decision):  # the one candidate's decision
    (version,) = decision.versions
    return version


def _metric(version, name):
    (metric,) = [m for m in version.metrics if m.name == name]
    return metric


BETTER = (_arm("2.1.0", 10_000, 1_000), _arm("2.2.0", 10_000, 1_200))


def test_a_candidate_better_on_the_primary_is_promoted():
    version = _only(decide(_plan(max_error_rate=0.02), _observe(*BETTER)))
    assert version.version == "2.2.0"
    assert version.verdict == "promote"
    primary = _metric(version, "conversion")
    assert primary.vote == "pass" and primary.kind == "primary"
    assert primary.interval is not None and primary.interval[0] > 0
    assert primary.p_value is not None and primary.p_value <= 0.05
    assert "conversion is better" in version.reasons[0] and "+2.00 pp" in version.reasons[0]


def test_a_candidate_no_better_on_the_primary_is_held():
    version = _only(decide(_plan(), _observe(_arm("2.1.0", 10_000, 1_000), _arm("2.2.0", 10_000, 1_010))))
    assert version.verdict == "hold"
    assert _metric(version, "conversion").vote == "hold"
    assert "not yet distinguishable" in version.reasons[0] and "planned to find 1.00 pp" in version.reasons[0]


def test_a_candidate_better_in_the_wrong_direction_is_not_promoted():
    plan = _plan(primary=dataclasses.replace(CONVERSION, direction="decrease", max_drop=0.05))
    assert _only(decide(plan, _observe(*BETTER))).verdict == "hold"


def test_below_min_samples_per_arm_a_metric_holds_however_large_the_effect():
    observations = _observe(_arm("2.1.0", 499, 20), _arm("2.2.0", 499, 250, errors=200))
    version = _only(decide(_plan(max_error_rate=0.02), observations))
    assert version.verdict == "hold"
    assert {m.vote for m in version.metrics} == {"hold"}
    assert "500 units per arm needed" in _metric(version, "conversion").reason
    assert "499 requests of the 500 needed" in _metric(version, "error_rate").reason


def test_with_no_data_every_metric_holds():
    version = _only(decide(_plan(max_error_rate=0.02, max_p99_latency_ms=400), _observe()))
    assert version.verdict == "hold"
    assert all(m.vote == "hold" and "no data" in m.reason for m in version.metrics)


def test_a_declared_outcome_that_never_arrives_holds_with_no_data():
    observations = _observe(_arm("2.1.0", 5_000, 0), _arm("2.2.0", 5_000, 0))
    version = _only(decide(_plan(), observations))
    assert version.verdict == "hold"
    assert "no data" in _metric(version, "conversion").reason


def test_a_guardrail_breach_rolls_back_even_when_the_primary_is_better():
    baseline, candidate = BETTER
    observations = _observe(baseline, dataclasses.replace(candidate, errors=500))  # 5 % against 2 %
    version = _only(decide(_plan(max_error_rate=0.02), observations))
    assert version.verdict == "rollback"
    assert _metric(version, "error_rate").vote == "fail"
    assert version.reasons == (_metric(version, "error_rate").reason,)
    assert "error_rate shows harm: 5.00 % of 10,000 requests failed" in version.reasons[0]


def test_p99_over_its_limit_rolls_back():
    baseline, candidate = BETTER
    slow = dataclasses.replace(candidate, over_latency_limit=300, latency_p99_ms=512.0)  # 3 % over 400 ms
    version = _only(decide(_plan(max_p99_latency_ms=400), _observe(baseline, slow)))
    assert version.verdict == "rollback"
    assert "p99 512 ms" in _metric(version, "p99_latency").reason


def test_the_primary_dropping_beyond_its_allowed_drop_rolls_back():
    observations = _observe(_arm("2.1.0", 10_000, 1_000), _arm("2.2.0", 10_000, 800))
    assert _only(decide(_plan(), observations)).verdict == "rollback"
    tolerant = _plan(primary=dataclasses.replace(CONVERSION, max_drop=0.03))
    assert _only(decide(tolerant, observations)).verdict == "hold"


def _mean_stats(rng: np.random.Generator, units: int, shift: float) -> OutcomeStats:
    values = np.where(rng.random(units) < 0.3, rng.normal(50 + shift, 10, units), 0.0)
    return OutcomeStats(units, float(values.sum()), float((values * values).sum()))


def test_an_outcome_guardrail_fails_beyond_its_drop_and_passes_within_it():
    rng = np.random.default_rng(5)
    plan = _plan(primary=None, outcome_guardrails=(OutcomeGuardrail("basket_value", "mean", max_drop=2.0),))
    base = ArmData("2.1.0", 20_000, 0, 0, outcomes={"basket_value": _mean_stats(rng, 20_000, 0.0)})
    dropped = ArmData("2.2.0", 20_000, 0, 0, outcomes={"basket_value": _mean_stats(rng, 20_000, -20.0)})
    same = ArmData("2.2.0", 20_000, 0, 0, outcomes={"basket_value": _mean_stats(rng, 20_000, 0.0)})
    assert _only(decide(plan, _observe(base, dropped))).verdict == "rollback"
    assert _only(decide(plan, _observe(base, same))).verdict == "promote"


def _borderline_errors(requests: int, limit: float) -> int:
    """An error count whose anytime-valid p-value of harm lies between alpha / 2 and alpha."""
    for errors in range(int(requests * limit), requests):
        p_value = rate_against_limit(errors, requests, limit=limit, alpha=0.05).p_value
        if p_value <= 0.05:
            assert p_value > 0.025
            return errors
    raise AssertionError("no borderline count")


def test_holm_across_the_guardrails_turns_a_borderline_breach_into_a_hold():
    errors = _borderline_errors(10_000, 0.02)
    candidate = _arm("2.2.0", 10_000, 1_000, errors=errors, over_latency_limit=10)
    observations = _observe(_arm("2.1.0", 10_000, 1_000), candidate)
    alone = _only(decide(_plan(primary=None, max_error_rate=0.02), observations))
    assert alone.verdict == "rollback"
    both = _only(decide(_plan(primary=None, max_error_rate=0.02, max_p99_latency_ms=400), observations))
    error_rate = _metric(both, "error_rate")
    assert error_rate.p_value == _metric(alone, "error_rate").p_value
    assert error_rate.p_adjusted == pytest.approx(2 * error_rate.p_value)
    assert error_rate.vote == "hold" and "Holm across 2 guardrails" in error_rate.reason
    assert _metric(both, "p99_latency").vote == "pass"
    assert both.verdict == "hold"


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([]) == []


def test_with_guardrails_only_promote_needs_every_guardrail_passed():
    candidate = _arm("2.2.0", 10_000, 1_000, errors=20, over_latency_limit=10)
    observations = _observe(_arm("2.1.0", 10_000, 1_000), candidate)
    plan = _plan(primary=None, max_error_rate=0.02, max_p99_latency_ms=400)
    assert _only(decide(plan, observations)).verdict == "promote"
    uncounted = _observe(observations.arms[0], dataclasses.replace(candidate, over_latency_limit=None))
    version = _only(decide(plan, uncounted))
    assert version.verdict == "hold"
    assert "cannot count requests slower than 400 ms" in " ".join(version.reasons)
    few = _observe(observations.arms[0], dataclasses.replace(candidate, requests=300, errors=0))
    assert _only(decide(plan, few)).verdict == "hold"


def test_a_version_whose_every_request_failed_is_never_promoted():
    rng = np.random.default_rng(6)
    plan = _plan(primary=None, outcome_guardrails=(OutcomeGuardrail("basket_value", "mean", max_drop=2.0),))
    stats = _mean_stats(rng, 20_000, 0.0)
    base = ArmData("2.1.0", 20_000, 20_000, 0, outcomes={"basket_value": stats})
    failing = ArmData("2.2.0", 20_000, 20_000, 20_000, outcomes={"basket_value": stats})
    version = _only(decide(plan, _observe(base, failing)))
    assert version.verdict == "hold"
    assert "every one of its 20,000 requests failed" in version.reasons[0]
    guarded = dataclasses.replace(plan, max_error_rate=0.02)
    assert _only(decide(guarded, _observe(base, failing))).verdict == "rollback"


def _epoch(table: str, day: int, observed: dict[str, int]) -> Epoch:
    """One day of the 50/50 table ``table``."""
    start, end = f"2026-12-{day:02d}T00:00:00Z", f"2026-12-{day + 1:02d}T00:00:00Z"
    return Epoch(table, start, end, {"2.1.0": 50, "2.2.0": 50}, observed)


def test_a_sample_ratio_mismatch_in_any_epoch_withholds_every_verdict():
    fine = _epoch("a" * 64, 1, {"2.1.0": 5_010, "2.2.0": 4_990})
    skewed = _epoch("b" * 64, 2, {"2.1.0": 4_800, "2.2.0": 5_200})
    decision = decide(_plan(max_error_rate=0.02), _observe(*BETTER, epochs=(fine, skewed)))
    assert decision.srm
    assert [check.srm for check in decision.epochs] == [False, True]
    version = _only(decision)
    assert version.verdict == "hold"
    assert (
        "sample ratio mismatch in epoch bbbbbbbbbbbb (2026-12-02T00:00:00Z to 2026-12-03T00:00:00Z)"
        in version.reasons[0]
    )
    assert decide(_plan(max_error_rate=0.02), _observe(*BETTER, epochs=(fine,))).versions[0].verdict == "promote"


def test_the_baseline_gets_no_verdict_and_each_candidate_its_own():
    plan = _plan(candidates=("2.2.0", "2.3.0"))
    decision = decide(plan, _observe(*BETTER, _arm("2.3.0", 10_000, 1_000)))
    assert [(v.version, v.verdict) for v in decision.versions] == [("2.2.0", "promote"), ("2.3.0", "hold")]


def test_the_decision_is_deterministic():
    plan = _plan(max_error_rate=0.02, max_p99_latency_ms=400, candidates=("2.2.0", "2.3.0"))
    arms = (*BETTER, _arm("2.3.0", 9_000, 950, errors=100))
    first = decide(plan, _observe(*arms))
    assert decide(plan, _observe(*arms)) == first
    assert decide(plan, _observe(*reversed(arms))) == first
