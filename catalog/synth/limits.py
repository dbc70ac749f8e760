"""What the targets cannot deploy, as catalog problems at the field that asks for it.

Each target defines its limits once (``Target.refusals``: SageMaker's rollout sizes and waits and
variant counts, KServe's two routed versions, a cluster's reach); ``target_problems`` turns a
refusal into a ``Problem`` located where the catalog says it: the binding's own rollout field,
``defaults.rollout`` when the binding inherits it, the binding's routes, or a version's artifact.
``validate`` checks every environment against its own target, ``synth --target`` also against the
target it synthesizes for. Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from catalog.domain.deployment import environments
from catalog.domain.effective import rollout_sources, semver_key
from catalog.domain.models import Binding, Catalog
from catalog.domain.problems import Loc, Problem
from catalog.synth.base import Refusal

__all__ = ["target_problems"]


def target_problems(catalog: Catalog, deployments: Iterable[tuple[str, str]]) -> list[Problem]:
    """The problems of deploying each (environment, target) pair: every refusal of the target for
    that environment's applications, at the field that asks for it. The local target refuses
    nothing, so pairs of it cost nothing."""
    from catalog.synth.app import get_target

    wanted = [(env, target) for env, target in dict.fromkeys(deployments) if target != "local"]
    if not wanted:
        return []
    plans = {plan.name: plan for plan in environments(catalog, {env for env, _ in wanted})}
    problems = []
    for env, target in wanted:
        if env in plans:
            problems += [_problem(catalog, env, target, r) for r in get_target(target).refusals(plans[env])]
    return problems


def _problem(catalog: Catalog, env: str, target: str, refusal: Refusal) -> Problem:
    where = "" if refusal.environment is not None else f" (environment {env!r})"
    return Problem(
        refusal.code,
        f"{target} cannot deploy {refusal.subject}{where}: {refusal.message}",
        loc=_loc(catalog, refusal),
        hint=refusal.hint,
        at_key=refusal.field in (("routes",), ("secrets",)),
    )


def _loc(catalog: Catalog, refusal: Refusal) -> Loc:
    if refusal.environment is not None:
        for e, spec in enumerate(catalog.environments or []):
            if spec is not None and spec.name == refusal.environment:
                return ("environments", e, *refusal.field)
        return ()
    if refusal.version is not None:
        for m, model in enumerate(catalog.models):
            if model is not None and model.name == refusal.model:
                for v, version in enumerate(model.versions):
                    if semver_key(version.version) == semver_key(refusal.version):
                        return ("models", m, "versions", v, *refusal.field)
        return ()
    for a, app in enumerate(catalog.applications):
        if app is None or app.name != refusal.application:
            continue
        for b, binding in enumerate(app.bindings):
            if binding is not None and binding.model == refusal.model:
                at = ("applications", a, "bindings", b)
                if refusal.field[:1] == ("rollout",):
                    return _rollout_loc(at, rollout_sources(catalog, binding), refusal.field[1:], binding)
                return (*at, *refusal.field)
    return ()


def _rollout_loc(binding_at: Loc, sources: Mapping[str, str], field: tuple[str | int, ...], binding: Binding) -> Loc:
    """Where a rollout field's value is written: the binding's block, ``defaults.rollout``, or for a
    built-in default, where the strategy it belongs to is chosen."""

    def block(source: str) -> Loc:
        return (*binding_at, "rollout") if source == "own" else ("defaults", "rollout")

    source = sources.get(str(field[0]), "builtin")
    if source != "builtin":
        return (*block(source), *field)
    if sources["strategy"] != "builtin":
        return (*block(sources["strategy"]), "strategy")
    return (*binding_at, "rollout") if binding.rollout is not None else binding_at
