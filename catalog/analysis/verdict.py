"""The verdict on each candidate version of a binding: every metric votes, the votes decide.

Each metric votes pass, fail or hold, with a reason a person can read:

- the primary outcome (if declared) passes when the candidate is better in the declared direction
  (the anytime-valid interval of candidate - baseline excludes 0 on the good side), fails when it is
  worse by more than its ``max_drop`` (the interval lies beyond it), and holds otherwise;
- each guardrail fails when it shows harm and passes when it shows it is within its limit: the error
  rate against ``max_error_rate`` and the share of requests over ``max_p99_latency_ms`` against 1 %
  (one rate against a limit), an outcome guardrail's difference against ``-max_drop`` (in its bad
  direction). A fail needs the guardrail's anytime-valid p-value of harm, adjusted by Holm across the
  version's guardrails, at or below alpha; a pass needs its own interval clear of the limit (every
  guardrail must pass for that, so no adjustment is due).

A metric below ``min_samples_per_arm`` (units for outcomes, requests for the rates) or without data
holds: it never passes. The verdict per candidate: hold when any epoch shows a sample ratio mismatch
(every verdict withheld); roll back when any metric fails; a version whose every request failed is
never promoted; with a primary outcome, promote when it passes (and no guardrail fails); with
guardrails only, promote when every one passed; hold otherwise. Pure and deterministic.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from catalog.analysis.data import (
    ArmData,
    Decision,
    EpochCheck,
    MetricResult,
    Observations,
    OutcomeStats,
    Verdict,
    VersionDecision,
    Vote,
)
from catalog.analysis.sequential import Comparison, compare_means, rate_against_limit
from catalog.analysis.srm import check_epochs
from catalog.domain.analysis_plan import AnalysisPlan, OutcomeKind
from catalog.wording import plural

__all__ = ["LATENCY_SHARE", "decide", "holm"]

LATENCY_SHARE = 0.01  # p99 <= limit  <=>  at most 1 % of requests over the limit


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment, in the order given: the k-th smallest p times (m - k + 1), never
    below the one before it, at most 1."""
    order = sorted(range(len(p_values)), key=lambda i: (p_values[i], i))
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def decide(plan: AnalysisPlan, observations: Observations) -> Decision:
    """SRM per epoch, then a verdict for every candidate of ``plan`` (the baseline gets none)."""
    epochs = check_epochs(observations.epochs)
    mismatched = [check for check in epochs if check.srm]
    arms = {arm.version: arm for arm in observations.arms}
    baseline = arms.get(plan.baseline) or ArmData(plan.baseline, 0, 0, 0)
    versions = []
    for version in plan.candidates:
        candidate = arms.get(version) or ArmData(version, 0, 0, 0)
        metrics = _metrics(plan, baseline, candidate)
        verdict, reasons = _verdict(plan, candidate, metrics, mismatched)
        versions.append(VersionDecision(version, verdict, reasons, metrics))
    return Decision(epochs=epochs, srm=bool(mismatched), versions=tuple(versions))


def _verdict(
    plan: AnalysisPlan, candidate: ArmData, metrics: tuple[MetricResult, ...], mismatched: list[EpochCheck]
) -> tuple[Verdict, tuple[str, ...]]:
    if mismatched:
        return "hold", tuple(_srm_reason(check) for check in mismatched)
    failed = [m.reason for m in metrics if m.vote == "fail"]
    if failed:
        return "rollback", tuple(failed)
    undecided = tuple(m.reason for m in metrics if m.vote == "hold")
    if candidate.requests and candidate.errors == candidate.requests:
        return "hold", (f"every one of its {candidate.requests:,} requests failed: never a pass", *undecided)
    guardrails = [m for m in metrics if m.kind == "guardrail"]
    if plan.primary is not None:
        primary = metrics[0]
        if primary.vote == "pass":
            return "promote", (primary.reason, *(m.reason for m in guardrails))
        return "hold", undecided
    if not guardrails:
        return "hold", ("nothing to decide on: the analysis declares no primary outcome and no guardrail",)
    if all(m.vote == "pass" for m in guardrails):
        return "promote", tuple(m.reason for m in guardrails)
    return "hold", undecided


def _srm_reason(check: EpochCheck) -> str:
    epoch = check.epoch
    where = f"epoch {epoch.table[:12]} ({epoch.start} to {epoch.end})"
    observed = ", ".join(f"{v}: {n:,}" for v, n in sorted(epoch.observed.items()))
    declared = ", ".join(f"{v}: {w} %" for v, w in sorted(epoch.declared.items()))
    test = "a unit on a version at weight 0" if check.chi_square is None else _p(check.p_value)
    return (
        f"sample ratio mismatch in {where}: units {observed} against weights {declared} ({test}); "
        "every verdict is withheld until the assignment is explained"
    )


# --- the metrics ---


@dataclass(frozen=True)
class _Guard:
    """A guardrail before Holm: its measurement, the p-value of harm (None: not tested, ``held``
    says why) and whether its interval shows it within the limit."""

    name: str
    held: str | None = None
    summary: str = ""
    estimate: float | None = None
    difference: float | None = None
    interval: tuple[float, float] | None = None
    harm_p: float | None = None
    safe: bool = False


def _metrics(plan: AnalysisPlan, baseline: ArmData, candidate: ArmData) -> tuple[MetricResult, ...]:
    primary = [_primary(plan, baseline, candidate)] if plan.primary is not None else []
    guards = _guards(plan, baseline, candidate)
    tested = [g.harm_p for g in guards if g.harm_p is not None]
    adjusted = iter(holm(tested))
    results = []
    for guard in guards:
        p_adjusted = next(adjusted) if guard.harm_p is not None else None
        vote: Vote
        if guard.held is not None:
            vote, reason = "hold", f"{guard.name}: {guard.held}"
        elif p_adjusted is not None and p_adjusted <= plan.alpha:
            vote, reason = "fail", f"{guard.name} shows harm: {guard.summary}, {_p(guard.harm_p)}"
            if len(tested) > 1:
                reason += f" (Holm across {len(tested)} guardrails: {_p(p_adjusted).replace('p', 'adjusted', 1)})"
        elif guard.safe:
            vote, reason = "pass", f"{guard.name} is within its limit: {guard.summary}"
        else:
            vote, reason = "hold", f"{guard.name} is not yet clear of its limit: {guard.summary}"
            if p_adjusted is not None and guard.harm_p is not None and guard.harm_p <= plan.alpha:
                reason += f" ({_p(guard.harm_p)}, adjusted {_p(p_adjusted)} by Holm across {len(tested)} guardrails)"
        results.append(
            MetricResult(
                name=guard.name,
                kind="guardrail",
                vote=vote,
                reason=reason,
                estimate=guard.estimate,
                difference=guard.difference,
                interval=guard.interval,
                p_value=guard.harm_p,
                p_adjusted=p_adjusted,
            )
        )
    return (*primary, *results)


def _primary(plan: AnalysisPlan, baseline: ArmData, candidate: ArmData) -> MetricResult:
    assert plan.primary is not None
    outcome = plan.primary
    sign = 1.0 if outcome.direction == "increase" else -1.0
    name = outcome.outcome
    held = _too_few(plan, outcome.outcome, baseline, candidate)
    if held is not None:
        return MetricResult(name, "primary", "hold", f"{name}: {held}")
    base, cand = baseline.outcomes[name], candidate.outcomes[name]
    comparison = compare_means(base, cand, effect=outcome.mde, alpha=plan.alpha)
    if not math.isfinite(comparison.std_error):
        return MetricResult(name, "primary", "hold", f"{name}: {_no_variation(base, cand)}")
    summary = _two_arm_summary(plan, outcome.kind, base, cand, comparison)
    better_p = comparison.p_value(0.0)
    drop_p = comparison.p_value(-sign * outcome.max_drop)
    improvement = sign * comparison.difference
    vote: Vote
    if improvement > 0 and better_p <= plan.alpha:
        vote, p_value = "pass", better_p
        reason = f"{name} is better ({outcome.direction} wanted): {summary}, {_p(better_p)}"
    elif improvement < -outcome.max_drop and drop_p <= plan.alpha:
        vote, p_value = "fail", drop_p
        allowed = _difference(outcome.kind, outcome.max_drop).lstrip("+")
        reason = f"{name} is worse by more than the {allowed} allowed: {summary}, {_p(drop_p)}"
    else:
        vote, p_value = "hold", better_p
        planned = comparison.planned
        reason = (
            f"{name} is not yet distinguishable from {plan.baseline}: {summary}, {_p(better_p)}; "
            f"about {planned.baseline:,} units of {plan.baseline} and {planned.candidate:,} of "
            f"{candidate.version} planned to find {_difference(outcome.kind, outcome.mde).lstrip('+')}"
        )
    return MetricResult(
        name,
        "primary",
        vote,
        reason,
        estimate=comparison.difference,
        difference=comparison.difference,
        interval=comparison.interval,
        p_value=p_value,
    )


def _guards(plan: AnalysisPlan, baseline: ArmData, candidate: ArmData) -> list[_Guard]:
    guards = []
    if plan.max_error_rate is not None:
        guards.append(_rate_guard(plan, "error_rate", candidate, candidate.errors, plan.max_error_rate, "failed"))
    if plan.max_p99_latency_ms is not None:
        guards.append(_latency_guard(plan, candidate, plan.max_p99_latency_ms))
    for guardrail in plan.outcome_guardrails:
        name = guardrail.outcome
        held = _too_few(plan, name, baseline, candidate)
        if held is not None:
            guards.append(_Guard(name, held=held))
            continue
        base, cand = baseline.outcomes[name], candidate.outcomes[name]
        comparison = compare_means(base, cand, effect=guardrail.max_drop, alpha=plan.alpha)
        if not math.isfinite(comparison.std_error):
            guards.append(_Guard(name, held=_no_variation(base, cand)))
            continue
        sign = 1.0 if guardrail.direction == "increase" else -1.0
        boundary = -sign * guardrail.max_drop  # the difference at which the allowed drop is used up
        p_value = comparison.p_value(boundary)
        harmful = sign * comparison.difference < -guardrail.max_drop
        allowed = _difference(guardrail.kind, guardrail.max_drop).lstrip("+")
        summary = f"{_two_arm_summary(plan, guardrail.kind, base, cand, comparison)}, {allowed} drop allowed"
        guards.append(
            _Guard(
                name,
                summary=summary,
                estimate=comparison.difference,
                difference=comparison.difference,
                interval=comparison.interval,
                harm_p=p_value if harmful else 1.0,
                safe=not harmful and p_value <= plan.alpha,
            )
        )
    return guards


def _rate_guard(plan: AnalysisPlan, name: str, candidate: ArmData, events: int, limit: float, what: str) -> _Guard:
    """A rate of ``events`` per request (``what`` says what they did) against ``limit``."""
    if candidate.requests <= 0:
        return _Guard(name, held=f"no data: no request reached {candidate.version}")
    if candidate.requests < plan.min_samples_per_arm:
        return _Guard(name, held=f"{plural(candidate.requests, 'request')} of the {plan.min_samples_per_arm:,} needed")
    bound = rate_against_limit(events, candidate.requests, limit=limit, alpha=plan.alpha)
    lo, hi = bound.interval
    summary = (
        f"{_percent(bound.rate)} of {candidate.requests:,} requests {what}, {_confidence(plan)} interval "
        f"[{_percent(lo)}, {_percent(hi)}] against at most {_percent(limit)}"
    )
    over = bound.rate > limit
    return _Guard(
        name,
        summary=summary,
        estimate=bound.rate,
        interval=bound.interval,
        harm_p=bound.p_value if over else 1.0,
        safe=not over and bound.p_value <= plan.alpha,
    )


def _latency_guard(plan: AnalysisPlan, candidate: ArmData, limit_ms: int) -> _Guard:
    name = "p99_latency"
    if candidate.requests and candidate.errors == candidate.requests:
        return _Guard(name, held="no data: every request failed, no latency to judge")
    if candidate.over_latency_limit is None and candidate.requests:
        return _Guard(name, held=f"the telemetry source cannot count requests slower than {limit_ms} ms")
    slower = f"slower than {limit_ms} ms"
    guard = _rate_guard(plan, name, candidate, candidate.over_latency_limit or 0, LATENCY_SHARE, slower)
    if guard.held is not None:
        return guard
    p99 = "" if candidate.latency_p99_ms is None else f"p99 {candidate.latency_p99_ms:.0f} ms; "
    return dataclasses.replace(guard, summary=f"{p99}{guard.summary} (p99 <= {limit_ms} ms)")


def _too_few(plan: AnalysisPlan, outcome: str, baseline: ArmData, candidate: ArmData) -> str | None:
    """Why an outcome cannot be compared yet (no data, or below min_samples_per_arm), else None."""
    counts = {arm.version: arm.outcomes[outcome].n if outcome in arm.outcomes else 0 for arm in (baseline, candidate)}
    empty = [version for version, n in counts.items() if n == 0]
    if empty:
        return f"no data: no unit of {' or '.join(empty)} with this outcome"
    if min(counts.values()) < plan.min_samples_per_arm:
        have = " and ".join(f"{n:,} in {version}" for version, n in counts.items())
        return f"{have}: {plan.min_samples_per_arm:,} units per arm needed"
    return None


def _no_variation(base: OutcomeStats, cand: OutcomeStats) -> str:
    if base.total == 0 and base.total_sq == 0 and cand.total == 0 and cand.total_sq == 0:
        return "no data: no unit of either version reported it yet"
    return "not yet comparable: every unit of both versions has the same value"


def _two_arm_summary(
    plan: AnalysisPlan, kind: OutcomeKind, base: OutcomeStats, cand: OutcomeStats, comparison: Comparison
) -> str:
    lo, hi = comparison.interval
    return (
        f"{_difference(kind, comparison.difference)} ({_value(kind, cand.mean)} against "
        f"{_value(kind, base.mean)} on {plan.baseline}), {_confidence(plan)} interval "
        f"[{_difference(kind, lo)}, {_difference(kind, hi)}]"
    )


# --- wording of numbers ---


def _confidence(plan: AnalysisPlan) -> str:
    return f"{100 * (1 - plan.alpha):g} % anytime-valid"


def _percent(rate: float) -> str:
    return f"{100 * rate:.2f} %"


def _value(kind: OutcomeKind, value: float | None) -> str:
    if value is None:
        return "none"
    return _percent(value) if kind != "mean" else f"{value:.4g}"


def _difference(kind: OutcomeKind, value: float) -> str:
    return f"{100 * value:+.2f} pp" if kind != "mean" else f"{value:+.4g}"


def _p(p_value: float | None) -> str:
    if p_value is None:
        return "p n/a"
    return "p < 0.0001" if p_value < 0.0001 else f"p = {p_value:.2g}"
