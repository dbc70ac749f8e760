"""An analysis as a rollout decision keeps it, and read back: enough to decide again.

A rollout's decision (``catalog.domain.rollouts.DecisionRecord.evidence``) holds the decision document
(``document.analysis_document``) without its ``history`` charts, plus ``"observations"``: the
``Observations`` it was computed from, without the arms' snapshots. ``plan_from_document`` and
``observations_from_json`` rebuild the inputs of ``verdict.decide``, so ``modelcat rollout replay``
re-derives the verdict from what was recorded. Pure, no IO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from catalog.analysis.data import ArmData, Epoch, JoinCounts, LiveMetric, Observations, OutcomeStats
from catalog.domain.analysis_plan import AnalysisPlan, OutcomeGuardrail, PrimaryOutcome

__all__ = ["evidence_of", "observations_from_json", "observations_json", "plan_from_document"]


def observations_json(observations: Observations) -> dict[str, Any]:
    """``observations`` as JSON values, the arms' snapshots (chart points) left out."""
    return asdict(replace(observations, arms=tuple(replace(a, history=()) for a in observations.arms)))


def evidence_of(document: Mapping[str, Any], observations: Observations) -> dict[str, Any]:
    """The evidence a decision keeps: the document without its charts, and its observations."""
    kept = {k: v for k, v in document.items() if k != "history"}
    return {**kept, "observations": observations_json(observations)}


def _arm(data: Mapping[str, Any]) -> ArmData:
    return ArmData(
        version=data["version"],
        units=int(data["units"]),
        requests=int(data["requests"]),
        errors=int(data["errors"]),
        latency_p50_ms=data.get("latency_p50_ms"),
        latency_p99_ms=data.get("latency_p99_ms"),
        over_latency_limit=data.get("over_latency_limit"),
        outcomes={name: OutcomeStats(**stats) for name, stats in (data.get("outcomes") or {}).items()},
        live_metrics={name: LiveMetric(**m) for name, m in (data.get("live_metrics") or {}).items()},
    )


def observations_from_json(data: Mapping[str, Any]) -> Observations:
    """The observations ``observations_json`` wrote (KeyError/TypeError when it is not such a value)."""
    return Observations(
        application=data["application"],
        model=data["model"],
        since=data["since"],
        until=data["until"],
        arms=tuple(_arm(a) for a in data["arms"]),
        epochs=tuple(Epoch(**e) for e in data.get("epochs") or ()),
        joins=JoinCounts(**(data.get("joins") or {})),
        telemetry_source=data.get("telemetry_source", "assignment-log"),
        queries=dict(data.get("queries") or {}),
        sql=dict(data.get("sql") or {}),
        notes=tuple(data.get("notes") or ()),
    )


def plan_from_document(document: Mapping[str, Any]) -> AnalysisPlan:
    """The analysis plan a decision document was computed with (its ``plan`` and the binding's names)."""
    plan = document["plan"]
    guardrails = plan.get("guardrails") or {}
    primary = plan.get("primary")
    return AnalysisPlan(
        application=document["application"],
        environment=document["environment"],
        model=document["model"],
        baseline=plan["baseline"],
        candidates=tuple(plan["candidates"]),
        sticky=bool(plan["sticky"]),
        primary=PrimaryOutcome(**primary) if primary else None,
        max_error_rate=guardrails.get("max_error_rate"),
        max_p99_latency_ms=guardrails.get("max_p99_latency_ms"),
        outcome_guardrails=tuple(OutcomeGuardrail(**g) for g in guardrails.get("outcomes") or ()),
        min_samples_per_arm=int(plan["min_samples_per_arm"]),
        alpha=float(plan["alpha"]),
        window_hours=int(plan["window_hours"]),
    )
