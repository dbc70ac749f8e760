"""Effective values: what a catalog's settings amount to once defaults are applied. Pure functions.

A binding's serving and rollout over ``defaults`` over built-in values, its analysis plan, the
environments a catalog deploys to (declared or implied by its applications), and the key two
version strings are compared by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from catalog.domain.analysis_plan import AnalysisPlan, OutcomeGuardrail, OutcomeKind, PrimaryOutcome
from catalog.domain.models import Application, Binding, Catalog, EnvironmentSpec, Rollout, Shadow
from catalog.domain.outcomes import Analysis, AnalysisGuardrails

__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "DEFAULT_PROGRESS_DEADLINE_SECONDS",
    "STEPPED_STRATEGIES",
    "EffectiveGates",
    "EffectiveRollout",
    "EffectiveServing",
    "ResolvedRollout",
    "declared_environments",
    "effective_analysis",
    "effective_gates",
    "effective_rollout",
    "effective_serving",
    "resolve_rollout",
    "rollout_sources",
    "semver_key",
]


def semver_key(version: str) -> str:
    """Versions that differ only in build metadata (after '+') are the same version."""
    return version.split("+", 1)[0]


@dataclass(frozen=True, slots=True)
class EffectiveServing:
    """A binding's serving settings with every default applied."""

    replicas: int
    min_replicas: int
    max_replicas: int
    target_concurrency: int
    cpu: str | None
    memory: str | None


def effective_serving(catalog: Catalog, binding: Binding) -> EffectiveServing:
    """A binding's serving block over the catalog defaults over built-in defaults."""
    own, base = binding.serving, catalog.defaults.serving

    def pick(field: str, fallback: int) -> int:
        for source in (own, base):
            value = getattr(source, field)
            if value is not None:
                return int(value)
        return fallback

    replicas = pick("replicas", 1)
    min_replicas = pick("min_replicas", min(replicas, 1))
    max_replicas = pick("max_replicas", max(replicas, min_replicas, 1))
    resources = own.resources or base.resources
    return EffectiveServing(
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_concurrency=pick("target_concurrency", 8),
        cpu=resources.cpu if resources else None,
        memory=resources.memory if resources else None,
    )


@dataclass(frozen=True, slots=True)
class EffectiveGates:
    """What a routed version must meet: the binding's gates over ``defaults.gates``, field by field."""

    max_age_days: int | None
    min_metrics: Mapping[str, float]


def effective_gates(catalog: Catalog, binding: Binding) -> EffectiveGates:
    """``max_age_days`` from the binding's gates, else the defaults'; ``min_metrics`` the binding's
    when it sets them (even to ``{}``), else the defaults'."""
    own, default = binding.gates, catalog.defaults.gates
    max_age = own.max_age_days if own is not None else None
    if max_age is None and default is not None:
        max_age = default.max_age_days
    if own is not None and "min_metrics" in own.model_fields_set:
        minimums = own.min_metrics
    else:
        minimums = default.min_metrics if default is not None else {}
    return EffectiveGates(max_age_days=max_age, min_metrics=minimums)


STEPPED_STRATEGIES = ("canary", "linear")
DEFAULT_INTERVAL_SECONDS = 300
DEFAULT_PROGRESS_DEADLINE_SECONDS = 1800


@dataclass(frozen=True, slots=True)
class EffectiveRollout:
    """How a change to a binding's routes takes effect, complete and target-neutral.

    A step moves a share of the traffic from the routes in force to the binding's new routes;
    between steps the target waits ``interval_seconds`` and checks the guardrails, and a step
    that breaks one stops the rollout (and rolls it back). ``steps`` lists the cumulative
    percent of traffic on the new routes after each step.
    """

    strategy: str = "all_at_once"
    step_percent: int = 100
    interval_seconds: int = 0
    max_error_rate: float | None = None
    max_p99_latency_ms: int | None = None
    explicit_steps: tuple[int, ...] = ()  # the rollout block's ``steps`` list, when it has one
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_SECONDS
    shadow: Shadow | None = None

    @property
    def steps(self) -> tuple[int, ...]:
        """all_at_once: (100,); canary 10: (10, 100); linear 25: (25, 50, 75, 100); an explicit list as written."""
        if self.explicit_steps and self.strategy in STEPPED_STRATEGIES:
            return self.explicit_steps
        step = self.step_percent
        if self.strategy == "canary" and step < 100:
            return (step, 100)
        if self.strategy == "linear":
            return (*range(step, 100, step), 100)
        return (100,)

    def next_step(self, share: int) -> int:
        """The share one step takes a version to from ``share``: the first of ``steps`` above it
        (canary 10: 0 -> 10, 10 -> 100; linear 25: 30 -> 50), 100 when none is."""
        return min((step for step in self.steps if step > share), default=100)

    @property
    def guarded(self) -> bool:
        return self.max_error_rate is not None or self.max_p99_latency_ms is not None


@dataclass(frozen=True, slots=True)
class ResolvedRollout:
    """A rollout's fields as written (None: unset) and where each came from: own, defaults, builtin."""

    strategy: str
    step_percent: int | None
    interval_seconds: int | None
    max_error_rate: float | None
    max_p99_latency_ms: int | None
    source: Mapping[str, str]
    steps: tuple[int, ...] | None = None
    progress_deadline_seconds: int | None = None
    shadow: Shadow | None = None


def resolve_rollout(own: Rollout | None, base: Rollout | None) -> ResolvedRollout:
    """``own`` over ``base``, field by field; steps, step_percent and interval_seconds are only taken
    from ``base`` when ``own`` keeps its strategy (a canary's step is not a linear one's), and steps
    and step_percent only when ``own`` writes neither (one way of stepping replaces the other)."""
    source: dict[str, str] = {}
    if own is not None and "strategy" in own.model_fields_set:
        strategy, source["strategy"] = own.strategy, "own"
    elif base is not None and "strategy" in base.model_fields_set:
        strategy, source["strategy"] = base.strategy, "defaults"
    else:
        strategy, source["strategy"] = "all_at_once", "builtin"
    inherit = base is not None and base.strategy == strategy
    # the steps (a steps list or a step_percent) come as a whole: a block that writes either takes neither from base
    own_steps = own is not None and (own.steps is not None or own.step_percent is not None)
    values: dict[str, int | None] = {}
    for name in ("step_percent", "interval_seconds"):
        values[name], source[name] = None, "builtin"
        if own is not None and getattr(own, name) is not None:
            values[name], source[name] = getattr(own, name), "own"
        elif inherit and getattr(base, name) is not None and not (name == "step_percent" and own_steps):
            values[name], source[name] = getattr(base, name), "defaults"
    guardrails, source["guardrails"] = None, "builtin"
    if own is not None and own.guardrails is not None:
        guardrails, source["guardrails"] = own.guardrails, "own"
    elif base is not None and base.guardrails is not None:
        guardrails, source["guardrails"] = base.guardrails, "defaults"
    steps, source["steps"] = None, "builtin"
    if own is not None and own.steps is not None:
        steps, source["steps"] = tuple(own.steps), "own"
    elif inherit and base is not None and base.steps is not None and not own_steps:
        steps, source["steps"] = tuple(base.steps), "defaults"
    extra: dict[str, object] = {}
    for name in ("progress_deadline_seconds", "shadow"):
        extra[name], source[name] = None, "builtin"
        if own is not None and getattr(own, name) is not None:
            extra[name], source[name] = getattr(own, name), "own"
        elif base is not None and getattr(base, name) is not None:
            extra[name], source[name] = getattr(base, name), "defaults"
    deadline, shadow = extra["progress_deadline_seconds"], extra["shadow"]
    return ResolvedRollout(
        strategy=strategy,
        step_percent=values["step_percent"],
        interval_seconds=values["interval_seconds"],
        max_error_rate=guardrails.max_error_rate if guardrails else None,
        max_p99_latency_ms=guardrails.max_p99_latency_ms if guardrails else None,
        source=source,
        steps=steps,
        progress_deadline_seconds=deadline if isinstance(deadline, int) else None,
        shadow=shadow if isinstance(shadow, Shadow) else None,
    )


def effective_rollout(catalog: Catalog, binding: Binding) -> EffectiveRollout:
    """A binding's rollout block over ``defaults.rollout`` over all_at_once.

    Fields the binding leaves out come from the defaults (step_percent and interval_seconds only
    when the binding keeps the default strategy; guardrails as a whole block). Total even for an
    invalid catalog: a stepped strategy without a step moves everything in one step.
    """
    r = resolve_rollout(binding.rollout, catalog.defaults.rollout)
    stepped = r.strategy in STEPPED_STRATEGIES
    return EffectiveRollout(
        strategy=r.strategy,
        step_percent=(r.step_percent or 100) if stepped else 100,
        interval_seconds=(r.interval_seconds if r.interval_seconds is not None else DEFAULT_INTERVAL_SECONDS)
        if stepped
        else 0,
        max_error_rate=r.max_error_rate,
        max_p99_latency_ms=r.max_p99_latency_ms,
        explicit_steps=(r.steps or ()) if stepped else (),
        progress_deadline_seconds=r.progress_deadline_seconds or DEFAULT_PROGRESS_DEADLINE_SECONDS,
        shadow=r.shadow if stepped else None,
    )


def rollout_sources(catalog: Catalog, binding: Binding) -> Mapping[str, str]:
    """Where each field of a binding's effective rollout comes from: ``own`` (the binding's
    rollout block), ``defaults`` (``defaults.rollout``) or ``builtin``; keys: strategy,
    step_percent, interval_seconds and guardrails."""
    return resolve_rollout(binding.rollout, catalog.defaults.rollout).source


def declared_environments(catalog: Catalog) -> list[EnvironmentSpec]:
    """The catalog's environments: those it declares, or, without an ``environments:`` section,
    one per environment an application names (target local, no settings), in order of appearance."""
    if catalog.environments is not None:
        return [e for e in catalog.environments if e is not None]
    names = dict.fromkeys(a.environment for a in catalog.applications if a is not None)
    return [EnvironmentSpec(name=name) for name in names]


def effective_analysis(catalog: Catalog, application: Application, binding: Binding) -> AnalysisPlan:
    """What ``modelcat analyze`` compares for a binding: its ``analysis`` block with every default filled in.

    The baseline is ``analysis.baseline``, else the binding's first route; the candidates are the other
    routes with traffic (weight > 0), in route order (a weight-0 route gets only pinned requests: nothing
    to compare). The guardrails are the effective rollout's (``rollout.guardrails`` over
    ``defaults.rollout``) with ``analysis.guardrails`` over them, field by field. A binding without an
    analysis block still gets a plan (its guardrails None when none are declared anywhere). Sticky
    bindings (a ``sticky_key``) count users; others count requests. The catalog must be valid
    (``modelcat validate``): an outcome the application does not declare is a ValueError.
    """
    declared: dict[str, OutcomeKind] = {outcome.name: outcome.kind for outcome in application.outcomes}

    def kind_of(name: str) -> OutcomeKind:
        if name not in declared:
            raise ValueError(f"application {application.name!r} declares no outcome {name!r}")
        return declared[name]

    analysis = binding.analysis or Analysis()
    baseline = analysis.baseline or binding.routes[0].version
    candidates = tuple(
        route.version
        for route in binding.routes
        if route.weight > 0 and semver_key(route.version) != semver_key(baseline)
    )
    rollout = effective_rollout(catalog, binding)
    own = analysis.guardrails or AnalysisGuardrails()
    primary = analysis.primary
    return AnalysisPlan(
        application=application.name,
        environment=application.environment,
        model=binding.model,
        baseline=baseline,
        candidates=candidates,
        sticky=binding.sticky_key is not None,
        primary=PrimaryOutcome(
            primary.outcome, kind_of(primary.outcome), primary.direction, primary.mde, primary.max_drop
        )
        if primary is not None
        else None,
        max_error_rate=own.max_error_rate if own.max_error_rate is not None else rollout.max_error_rate,
        max_p99_latency_ms=own.max_p99_latency_ms if own.max_p99_latency_ms is not None else rollout.max_p99_latency_ms,
        outcome_guardrails=tuple(
            OutcomeGuardrail(limit.outcome, kind_of(limit.outcome), limit.max_drop) for limit in own.outcomes
        ),
        min_samples_per_arm=analysis.min_samples_per_arm,
        alpha=analysis.alpha,
        window_hours=analysis.window_hours,
    )
