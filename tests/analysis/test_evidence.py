"""A decision's evidence, read back, decides as it did (what `modelcat rollout replay` relies on)."""

from __future__ import annotations

import json
from dataclasses import replace

from catalog.analysis.data import ArmData, ArmSnapshot, Epoch, Observations, OutcomeStats
from catalog.analysis.document import analysis_document
from catalog.analysis.evidence import evidence_of, observations_from_json, plan_from_document
from catalog.analysis.verdict import decide
from catalog.domain.analysis_plan import AnalysisPlan, OutcomeGuardrail, PrimaryOutcome
from catalog.domain.live_metrics import LiveMetric


def _plan() -> AnalysisPlan:
    return AnalysisPlan(
        application="storefront",
        environment="production",
        model="recommender",
        baseline="2.1.0",
        candidates=("2.2.0",),
        sticky=True,
        primary=PrimaryOutcome("conversion", "proportion", "increase", 0.02, 0.01),
        max_error_rate=0.02,
        max_p99_latency_ms=400,
        outcome_guardrails=(OutcomeGuardrail("basket", "mean", 0.5),),
        min_samples_per_arm=300,
    )


def _arm(version: str, units: int, hits: int, errors: int) -> ArmData:
    return ArmData(
        version,
        units,
        units,
        errors,
        12.5,
        80.25,
        over_latency_limit=1,
        outcomes={
            "conversion": OutcomeStats(units, float(hits), float(hits), hits),
            "basket": OutcomeStats(units, 3.1 * units, 11.7 * units, units),
        },
        history=(ArmSnapshot("2026-12-06T10:00:00Z", units // 2),),
        live_metrics={"is_fraud": LiveMetric("auc", 0.91, 40, 7)},
    )


def _observations() -> Observations:
    epoch = Epoch(
        "ab" * 32,
        "2026-12-06T09:00:00Z",
        "2026-12-06T11:00:00Z",
        {"2.1.0": 50, "2.2.0": 50},
        {"2.1.0": 4000, "2.2.0": 4050},
    )
    return Observations(
        "storefront",
        "recommender",
        "2026-12-06T09:00:00Z",
        "2026-12-06T11:00:00Z",
        (_arm("2.1.0", 4000, 400, 3), _arm("2.2.0", 4050, 545, 2)),
        (epoch,),
        telemetry_source="prometheus",
        notes=("a note",),
    )


def test_evidence_read_back_gives_the_same_plan_and_the_same_decision() -> None:
    plan, observations = _plan(), _observations()
    decision = decide(plan, observations)
    evidence = json.loads(json.dumps(evidence_of(analysis_document(plan, observations, decision), observations)))
    assert "history" not in evidence
    again = observations_from_json(evidence["observations"])
    assert plan_from_document(evidence) == plan
    assert all(arm.history == () for arm in again.arms)
    assert decide(plan_from_document(evidence), again) == decision
    assert decision.versions[0].verdict == "promote"  # the case is not trivially equal by being empty


def test_evidence_keeps_every_number_the_statistics_read() -> None:
    observations = _observations()
    again = observations_from_json(json.loads(json.dumps(evidence_of({}, observations)["observations"])))
    assert again == replace(observations, arms=tuple(replace(a, history=()) for a in observations.arms))
