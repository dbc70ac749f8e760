"""The decision document of ``modelcat analyze``: one binding's plan, observations and verdicts as JSON.

Schema ``modelcat/analysis-v1`` (``schemas/analysis.schema.json``, fields in docs/analysis.md). It is
deterministic: the same plan, observations and decision give the same bytes (keys sorted, floats
rounded to 6 significant digits, non-finite numbers written as null, no wall-clock time), so policies
and the rollout controller can diff and cache it. Pure, no IO.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from catalog.analysis.data import ArmData, ArmSnapshot, Decision, Epoch, MetricResult, Observations, VersionDecision
from catalog.domain.analysis_plan import AnalysisPlan

__all__ = [
    "SCHEMA",
    "Look",
    "analysis_document",
    "document_head",
    "dump_document",
    "metric_document",
    "observations_at",
    "rounded",
    "version_order",
]

SCHEMA = "modelcat/analysis-v1"
SIGNIFICANT_DIGITS = 6


@dataclass(frozen=True)
class Look:
    """The decision as it stood at ``time``: the statistics run over the arms' snapshots up to then.
    The history's points; the confidence sequences are valid at every one of them."""

    time: str
    decision: Decision


def rounded(value: Any) -> Any:
    """``value`` with every float rounded to 6 significant digits (NaN and infinities: None), tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): rounded(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [rounded(v) for v in value]
    raise TypeError(f"not a JSON value: {value!r}")


def dump_document(document: Mapping[str, Any]) -> str:
    """The document's bytes (as text): sorted keys, indented, rounded, a final newline."""
    return json.dumps(rounded(document), sort_keys=True, indent=2, allow_nan=False) + "\n"


def observations_at(observations: Observations, time: str) -> Observations:
    """The observations as they stood at ``time``: each arm's last snapshot at or before it (units and
    outcomes; requests, errors and latency are not kept over time), no epochs."""
    arms = []
    for arm in observations.arms:
        past = [s for s in arm.history if s.time <= time]
        last = past[-1] if past else ArmSnapshot(time, 0)
        arms.append(ArmData(arm.version, last.units, 0, 0, outcomes=dict(last.outcomes), history=tuple(past)))
    return replace(observations, until=time, arms=tuple(arms), epochs=())


def _plan(plan: AnalysisPlan) -> dict[str, Any]:
    return {
        "baseline": plan.baseline,
        "candidates": list(plan.candidates),
        "sticky": plan.sticky,
        "primary": asdict(plan.primary) if plan.primary else None,
        "guardrails": {
            "max_error_rate": plan.max_error_rate,
            "max_p99_latency_ms": plan.max_p99_latency_ms,
            "outcomes": [asdict(g) for g in plan.outcome_guardrails],
        },
        "min_samples_per_arm": plan.min_samples_per_arm,
        "alpha": plan.alpha,
        "window_hours": plan.window_hours,
    }


def _epoch(epoch: Epoch, chi_square: float | None, p_value: float | None, srm: bool) -> dict[str, Any]:
    return {
        "table": epoch.table,
        "start": epoch.start,
        "end": epoch.end,
        "declared": dict(epoch.declared),
        "observed": dict(epoch.observed),
        "chi_square": chi_square,
        "p_value": p_value,
        "srm": srm,
    }


def _epochs(observations: Observations, decision: Decision) -> list[dict[str, Any]]:
    """Every epoch with its SRM check; an epoch the statistics did not check (none, or no data) has nulls."""
    checked = {(c.epoch.table, c.epoch.start): c for c in decision.epochs}
    epochs = [c.epoch for c in decision.epochs]
    epochs += [e for e in observations.epochs if (e.table, e.start) not in checked]
    epochs.sort(key=lambda e: (e.start, e.table))
    out = []
    for epoch in epochs:
        check = checked.get((epoch.table, epoch.start))
        out.append(_epoch(epoch, *((check.chi_square, check.p_value, check.srm) if check else (None, None, False))))
    return out


def document_head(schema: str, plan: AnalysisPlan, since: str, until: str) -> dict[str, Any]:
    """The fields every decision document starts with: ``ok``, its ``schema``, the binding and the period."""
    return {
        "ok": True,
        "schema": schema,
        "application": plan.application,
        "model": plan.model,
        "environment": plan.environment,
        "since": since,
        "until": until,
    }


def metric_document(m: MetricResult) -> dict[str, Any]:
    """A metric's vote as the documents write it (``modelcat analyze``'s and the shadow analysis')."""
    return {
        "name": m.name,
        "kind": m.kind,
        "estimate": m.estimate,
        "difference": m.difference,
        "interval": list(m.interval) if m.interval is not None else None,
        "p_value": m.p_value,
        "p_adjusted": m.p_adjusted,
        "vote": m.vote,
        "reason": m.reason,
    }


def _version(
    version: str, role: str, arm: ArmData | None, verdict: VersionDecision | None, offline: Mapping[str, float]
) -> dict[str, Any]:
    requests = arm.requests if arm else 0
    errors = arm.errors if arm else 0
    outcomes = arm.outcomes if arm else {}
    return {
        "version": version,
        "role": role,
        "units": arm.units if arm else 0,
        "requests": requests,
        "errors": errors,
        "error_rate": errors / requests if requests else None,
        "latency_ms": {"p50": arm.latency_p50_ms if arm else None, "p99": arm.latency_p99_ms if arm else None},
        "over_latency_limit": arm.over_latency_limit if arm else None,
        "outcomes": {name: {"n": s.n, "mean": s.mean} for name, s in outcomes.items()},
        "offline_metrics": dict(offline),
        "live_metrics": {label: asdict(m) for label, m in (arm.live_metrics if arm else {}).items()},
        "metrics": [metric_document(m) for m in verdict.metrics] if verdict else [],
        "verdict": verdict.verdict if verdict and role == "candidate" else None,
        "reasons": list(verdict.reasons) if verdict and role == "candidate" else [],
    }


def _history(order: Sequence[str], observations: Observations, looks: Sequence[Look]) -> list[dict[str, Any]]:
    """One point per look and version: units, outcome means and each metric's difference and interval."""
    points = []
    for look in sorted(looks, key=lambda lk: lk.time):
        then = observations_at(observations, look.time)
        decided = {v.version: v for v in look.decision.versions}
        for arm in sorted(then.arms, key=lambda a: order.index(a.version)):
            verdict = decided.get(arm.version)
            points.append(
                {
                    "time": look.time,
                    "version": arm.version,
                    "units": arm.units,
                    "outcomes": {name: {"n": s.n, "mean": s.mean} for name, s in arm.outcomes.items()},
                    "metrics": [
                        {
                            "name": m.name,
                            "difference": m.difference,
                            "interval": list(m.interval) if m.interval is not None else None,
                            "vote": m.vote,
                        }
                        for m in (verdict.metrics if verdict else ())
                    ],
                }
            )
    return points


def version_order(plan: AnalysisPlan, observations: Observations) -> list[str]:
    """The baseline, the candidates in route order, then any other observed version (sorted)."""
    declared = [plan.baseline, *plan.candidates]
    return declared + sorted({a.version for a in observations.arms} - set(declared))


def analysis_document(
    plan: AnalysisPlan,
    observations: Observations,
    decision: Decision,
    *,
    offline_metrics: Mapping[str, Mapping[str, float]] | None = None,
    looks: Sequence[Look] = (),
) -> dict[str, Any]:
    """The decision document (``"ok": true``; see the module docstring). ``offline_metrics``: the
    catalog's metrics per version; ``looks``: the decision at earlier times, for the history."""
    arms = {a.version: a for a in observations.arms}
    decided = {v.version: v for v in decision.versions}
    offline = offline_metrics or {}
    order = version_order(plan, observations)
    versions = [
        _version(v, "baseline" if v == plan.baseline else "candidate", arms.get(v), decided.get(v), offline.get(v, {}))
        for v in order
    ]
    return {
        **document_head(SCHEMA, plan, observations.since, observations.until),
        "source": {
            "telemetry": observations.telemetry_source,
            "queries": dict(observations.queries),
            "sql": dict(observations.sql),
            "notes": list(observations.notes),
        },
        "plan": _plan(plan),
        "srm": decision.srm,
        "epochs": _epochs(observations, decision),
        "joins": asdict(observations.joins),
        "versions": versions,
        "history": _history(order, observations, looks),
    }
