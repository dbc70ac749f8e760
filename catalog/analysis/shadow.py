"""The shadow step's analysis: does the mirrored version agree with the live one, and is it healthy?

During a rollout's shadow step the router copies a share of the binding's requests to the candidate
and logs whether its answers agree with the live ones (``catalog.serving.mirror``; the counts come
from ``catalog.feedback.shadow``). Each metric votes pass, fail or hold, as in ``modelcat analyze``:

- **agreement**: the share of compared copies (those that got an answer) that agree, against the
  rollout's ``shadow.min_agreement``. Its anytime-valid interval is the confidence sequence of the
  disagreement rate against ``1 - min_agreement`` (``catalog.analysis.sequential``: the exact
  beta-binomial mixture): it passes when the whole agreement interval is at or above the minimum,
  fails when the whole of it is below, and holds otherwise, and below ``min_samples_per_arm``
  compared copies. Looked at as often as one likes, an agreement exactly at the minimum fails with
  probability at most alpha (tests/analysis prove it by simulation).
- the binding's **guardrails** (``max_error_rate``, ``max_p99_latency_ms``), on the copies: the error
  rate of the copies sent, the share slower than the limit against 1 %, voted by
  ``catalog.analysis.verdict.decide`` exactly as on live traffic (Holm across them).

The candidate's verdict is the worst vote: rollback when any fails, promote when every one passes,
hold otherwise (no copy yet holds). The document (``modelcat/shadow-analysis-v1``) lists it under
``versions`` like ``modelcat analyze``'s, so the rollout controller reads both the same way; it is
deterministic (``dump_document``). Copies dropped by the router (too many in flight) are counted,
never voted on.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from catalog.analysis.data import ArmData, MetricResult, Observations, Verdict, Vote
from catalog.analysis.document import document_head, metric_document
from catalog.analysis.sequential import rate_against_limit, rate_p_value_arrays
from catalog.analysis.verdict import decide
from catalog.domain.effective import effective_analysis, effective_rollout, semver_key
from catalog.domain.models import Shadow
from catalog.errors import UsageError
from catalog.feedback.shadow import ShadowCounts, observe_shadow
from catalog.layout import analytics_dir, run_dir, stack_name, state_root

if TYPE_CHECKING:
    from catalog.domain.analysis_plan import AnalysisPlan
    from catalog.domain.models import Application, Binding, Catalog

__all__ = ["SCHEMA", "agreement_result", "agreement_votes", "analyze_shadow", "shadow_decision", "shadow_document"]

SCHEMA = "modelcat/shadow-analysis-v1"
PASS, HOLD, FAIL = 1, 0, -1
_DEFAULT_SHADOW = Shadow(percent=1)  # the thresholds of a mirror whose rollout declares no shadow step


def agreement_votes(
    agreed: npt.ArrayLike, compared: npt.ArrayLike, *, min_agreement: float, alpha: float, min_samples: int
) -> npt.NDArray[np.int8]:
    """The agreement vote after ``agreed`` of ``compared`` copies (element by element): ``PASS`` (1) when
    the anytime-valid agreement interval lies at or above ``min_agreement``, ``FAIL`` (-1) when it lies
    below, ``HOLD`` (0) otherwise and below ``min_samples`` compared copies."""
    n = np.asarray(compared, dtype=np.float64)
    disagreed = n - np.asarray(agreed, dtype=np.float64)
    limit = 1.0 - min_agreement  # the disagreement rate allowed
    enough = n >= max(min_samples, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, disagreed / np.maximum(n, 1.0), 0.0)
    if limit <= 0.0:  # every copy must agree: one that does not shows the agreement below 1
        votes = np.where(disagreed > 0, FAIL, HOLD)
    elif limit >= 1.0:  # any agreement will do
        votes = np.full(n.shape, PASS)
    else:
        decided = rate_p_value_arrays(disagreed, np.maximum(n, 1.0), limit, limit=limit, alpha=alpha) <= alpha
        votes = np.where(decided & (rate > limit), FAIL, np.where(decided & (rate < limit), PASS, HOLD))
    return np.asarray(np.where(enough, votes, HOLD), dtype=np.int8)


def _percent(rate: float) -> str:
    return f"{rate:.2%}"


def _copies(n: int) -> str:
    return f"{n:,} compared {'copy' if n == 1 else 'copies'}"


def agreement_result(counts: ShadowCounts, min_agreement: float, alpha: float, min_samples: int) -> MetricResult:
    """The agreement metric of ``counts`` with its vote and reason."""
    name, n = "agreement", counts.compared
    if n == 0:
        reason = f"{name}: no data: no copy of a request to {counts.version} was compared yet"
        return MetricResult(name, "guardrail", "hold", reason)
    vote_code = int(
        agreement_votes(counts.agreed, n, min_agreement=min_agreement, alpha=alpha, min_samples=min_samples)
    )
    rate = counts.agreed / n
    limit = 1.0 - min_agreement
    interval: tuple[float, float] | None = None  # none at the extreme minimums (0 and 1): no limit to test
    summary = f"{_percent(rate)} of {_copies(n)} agree"
    if 0.0 < limit < 1.0:
        low, high = rate_against_limit(counts.disagreed, n, limit=limit, alpha=alpha).interval
        interval = (1.0 - high, 1.0 - low)
        summary += f", {1 - alpha:.0%} interval [{_percent(interval[0])}, {_percent(interval[1])}]"
    summary += f" against at least {_percent(min_agreement)}"
    votes: dict[int, Vote] = {PASS: "pass", FAIL: "fail", HOLD: "hold"}
    vote = votes[vote_code]
    if n < min_samples:
        reason = f"{name}: {_copies(n)} of the {min_samples:,} needed ({summary})"
    elif vote == "pass":
        reason = f"{name} is at or above its minimum: {summary}"
    elif vote == "fail":
        reason = f"{name} is below its minimum: {summary}"
    else:
        reason = f"{name} is not yet clear of its minimum: {summary}"
    return MetricResult(name, "guardrail", vote, reason, estimate=rate, interval=interval)


def _guardrails(plan: AnalysisPlan, counts: ShadowCounts) -> tuple[MetricResult, ...]:
    """The binding's guardrails voted on the copies, by the A/B analysis' own rule."""
    guarded = dataclasses.replace(plan, candidates=(counts.version,), primary=None, outcome_guardrails=())
    copies = ArmData(
        counts.version,
        units=counts.copies,
        requests=counts.copies,
        errors=counts.errors,
        latency_p50_ms=counts.latency_p50_ms,
        latency_p99_ms=counts.latency_p99_ms,
        over_latency_limit=counts.over_latency_limit,
    )
    observations = Observations(counts.application, counts.model, counts.since, counts.until, arms=(copies,))
    (decided,) = decide(guarded, observations).versions
    return decided.metrics


def shadow_decision(
    plan: AnalysisPlan, shadow: Shadow, counts: ShadowCounts
) -> tuple[Verdict, tuple[str, ...], tuple[MetricResult, ...]]:
    """The candidate's verdict, its reasons and every metric: the worst vote."""
    agreement = agreement_result(counts, shadow.min_agreement, plan.alpha, plan.min_samples_per_arm)
    metrics = (agreement, *_guardrails(plan, counts))
    failed = tuple(m.reason for m in metrics if m.vote == "fail")
    if failed:
        return "rollback", failed, metrics
    held = tuple(m.reason for m in metrics if m.vote == "hold")
    if held:
        return "hold", held, metrics
    return "promote", tuple(m.reason for m in metrics), metrics


def shadow_document(plan: AnalysisPlan, shadow: Shadow, counts: ShadowCounts, percent: int | None) -> dict[str, Any]:
    """The decision document of a shadow step (``"ok": true``; see the module docstring)."""
    verdict, reasons, metrics = shadow_decision(plan, shadow, counts)
    copies = counts.copies
    return {
        **document_head(SCHEMA, plan, counts.since, counts.until),
        "source": {"shadow_log": True, "sql": dict(counts.sql)},
        "plan": {
            "mirrored_version": counts.version,
            "percent": percent,
            "min_agreement": shadow.min_agreement,
            "max_abs_difference": shadow.max_abs_difference,
            "guardrails": {"max_error_rate": plan.max_error_rate, "max_p99_latency_ms": plan.max_p99_latency_ms},
            "min_samples": plan.min_samples_per_arm,
            "alpha": plan.alpha,
        },
        "counts": {
            "copies": copies,
            "compared": counts.compared,
            "agreed": counts.agreed,
            "disagreed": counts.disagreed,
            "errors": counts.errors,
            "dropped": counts.dropped,
            "agreement": counts.agreed / counts.compared if counts.compared else None,
            "error_rate": counts.errors / copies if copies else None,
            "latency_ms": {"p50": counts.latency_p50_ms, "p99": counts.latency_p99_ms},
            "over_latency_limit": counts.over_latency_limit,
            "outputs": {name: {"agreed": a, "compared": n} for name, (a, n) in counts.outputs.items()},
            "live_versions": dict(counts.live_versions),
        },
        "versions": [
            {
                "version": counts.version,
                "role": "candidate",
                "verdict": verdict,
                "reasons": list(reasons),
                "metrics": [metric_document(m) for m in metrics],
            }
        ],
    }


def analyze_shadow(
    catalog: Catalog,
    catalog_path: Path,
    application: Application,
    binding: Binding,
    version: str,
    target: str,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    """The shadow step's decision document for ``version`` mirrored by ``application``'s ``binding``
    over [since, until] (None: from the first copy, up to now), from the stack's shadow log. The
    thresholds are the binding's effective rollout's ``shadow`` (else the defaults) and its
    effective analysis' guardrails, alpha and minimum sample. UsageError when ``version`` is not a
    version of the binding's model."""
    model = next((m for m in catalog.models if m is not None and m.name == binding.model), None)
    known = {semver_key(v.version): v.version for v in (model.versions if model else [])}
    if semver_key(version) not in known:
        listed = ", ".join(known.values()) or "none"
        raise UsageError(f"model {binding.model!r} has no version {version} (versions: {listed})")
    version = known[semver_key(version)]
    plan = effective_analysis(catalog, application, binding)
    shadow = effective_rollout(catalog, binding).shadow or _DEFAULT_SHADOW
    stack = run_dir(state_root(catalog_path), stack_name(application.environment, target))
    counts = observe_shadow(
        analytics_dir(stack), application.name, binding.model, version, since, until, plan.max_p99_latency_ms
    )
    mirror = binding.mirror
    percent = mirror.percent if mirror is not None and semver_key(mirror.version) == semver_key(version) else None
    return shadow_document(plan, shadow, counts, percent)
