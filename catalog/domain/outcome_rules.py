"""Cross-reference rules of outcomes and analysis blocks: what the schema alone cannot see. Pure.

An application's outcome names are unique; a binding's ``analysis`` names declared outcomes that
can be compared (a label is not a proportion or a mean), sizes that fit their kind, and a baseline
among its routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from catalog.domain.effective import STEPPED_STRATEGIES, effective_rollout, semver_key
from catalog.domain.models import Application, Binding, Catalog
from catalog.domain.problems import Loc, Problem
from catalog.wording import did_you_mean

__all__ = ["check_analysis", "check_outcomes"]


def check_outcomes(loc: Loc, app: Application) -> Iterator[Problem]:
    """Each outcome of ``app`` (at ``loc``) declared once."""
    for o, first in _repeats(outcome.name for outcome in app.outcomes):
        yield Problem(
            "outcome.duplicate",
            f"outcome {app.outcomes[o].name!r} is declared twice in application {app.name!r} (outcomes {first} and {o})",
            loc=(*loc, "outcomes", o, "name"),
            hint="declare each outcome once",
        )


def _repeats(names: Iterable[str]) -> Iterator[tuple[int, int]]:
    """(index, index of its first occurrence) of each name already seen."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            yield i, first[name]
        else:
            first[name] = i


def check_analysis(catalog: Catalog, loc: Loc, app: Application, binding: Binding) -> Iterator[Problem]:
    """A binding's analysis block (``loc`` is the binding's): outcomes, sizes and baseline."""
    analysis = binding.analysis
    if analysis is None:
        return
    aloc = (*loc, "analysis")
    kinds = {outcome.name: outcome.kind for outcome in app.outcomes}
    if analysis.primary is not None:
        primary, ploc = analysis.primary, (*aloc, "primary")
        yield from _outcome_ref(ploc, app, primary.outcome, "primary outcome")
        kind = kinds.get(primary.outcome)
        if kind == "proportion" and primary.mde >= 1:
            yield Problem(
                "analysis.mde-range",
                f"mde {primary.mde:g} is not a difference of proportions: {primary.outcome!r} is a proportion, "
                "so its mde lies in (0, 1)",
                loc=(*ploc, "mde"),
                hint="write the difference as a fraction: 0.02 is two percentage points",
            )
        if kind == "proportion" and primary.max_drop >= 1:
            yield _drop_range((*ploc, "max_drop"), primary.outcome, primary.max_drop)
    limits = analysis.guardrails.outcomes if analysis.guardrails is not None else []
    repeated = dict(_repeats(limit.outcome for limit in limits))
    for g, limit in enumerate(limits):
        gloc = (*aloc, "guardrails", "outcomes", g)
        if g in repeated:
            yield Problem(
                "analysis.guardrail-twice",
                f"outcome {limit.outcome!r} is guarded twice (guardrails {repeated[g]} and {g})",
                loc=(*gloc, "outcome"),
                hint="keep one entry per outcome, with the drop you can bear",
            )
            continue
        yield from _outcome_ref(gloc, app, limit.outcome, "guardrail outcome")
        if kinds.get(limit.outcome) == "proportion" and limit.max_drop >= 1:
            yield _drop_range((*gloc, "max_drop"), limit.outcome, limit.max_drop)
    routes = {semver_key(route.version): route for route in binding.routes}
    if analysis.baseline is not None:
        baseline = routes.get(semver_key(analysis.baseline))
        if baseline is None:
            listed = ", ".join(route.version for route in binding.routes)
            yield Problem(
                "ref.missing-baseline",
                f"baseline {analysis.baseline} is not one of the binding's routes",
                loc=(*aloc, "baseline"),
                hint=did_you_mean(analysis.baseline, [r.version for r in binding.routes])
                + f"the baseline is a routed version: {listed}",
            )
        elif baseline.weight == 0 and len(routes) > 1:
            yield Problem(
                "analysis.baseline-without-traffic",
                f"baseline {analysis.baseline} gets no traffic (weight 0): there is nothing to compare with",
                loc=(*aloc, "baseline"),
                hint="compare against a version that serves traffic",
                severity="warning",
            )
    if len(routes) < 2 and effective_rollout(catalog, binding).strategy not in STEPPED_STRATEGIES:
        yield Problem(
            "analysis.nothing-to-compare",
            f"{binding.model!r} has one route and no canary or linear rollout: the analysis has no candidate",
            loc=aloc,
            hint="route a candidate version beside the baseline (an A/B test or a canary), or remove analysis",
            severity="warning",
            at_key=True,
        )


def _outcome_ref(loc: Loc, app: Application, name: str, what: str) -> Iterator[Problem]:
    """``name`` is a declared outcome of ``app`` that can be compared (a proportion or a mean)."""
    kinds = {outcome.name: outcome.kind for outcome in app.outcomes}
    if name not in kinds:
        listed = ", ".join(kinds) or "none"
        yield Problem(
            "ref.missing-outcome",
            f"{what} {name!r} is not an outcome of application {app.name!r}",
            loc=(*loc, "outcome"),
            hint=did_you_mean(name, list(kinds)) + f"declare it under the application's outcomes (declared: {listed})",
        )
    elif kinds[name] == "label":
        yield Problem(
            "analysis.label-outcome",
            f"{what} {name!r} is a label: labels feed live metrics (AUC, accuracy), they are not compared",
            loc=(*loc, "outcome"),
            hint="compare a proportion or a mean outcome; declare the label's kind as proportion to compare its rate",
        )


def _drop_range(loc: Loc, outcome: str, max_drop: float) -> Problem:
    return Problem(
        "analysis.drop-range",
        f"max_drop {max_drop:g} allows any drop of {outcome!r}, a proportion (between 0 and 1)",
        loc=loc,
        hint="write the drop as a fraction below 1: 0.01 is one percentage point",
    )
