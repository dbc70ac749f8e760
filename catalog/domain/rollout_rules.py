"""Cross-reference rules of rollout plans and mirrors: what the schema alone cannot see. Pure.

A rollout block (a binding's over ``defaults.rollout``) asks only for what its strategy uses: a
canary or linear rollout steps by ``step_percent`` or by an explicit ``steps`` list (one of the
two), rising to 100 % in at most ``MAX_STEPS`` steps whose bakes take at most ``MAX_PLAN_SECONDS``;
an all_at_once rollout has no steps, no bake and no shadow step. A binding's ``mirror`` (a shadow
step in force) copies requests to a version routed with weight 0 while another version answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import pairwise

from catalog.domain.effective import (
    DEFAULT_INTERVAL_SECONDS,
    STEPPED_STRATEGIES,
    EffectiveRollout,
    ResolvedRollout,
    resolve_rollout,
    semver_key,
)
from catalog.domain.models import Binding, Rollout, Version
from catalog.domain.problems import Loc, Problem
from catalog.wording import known_choices

__all__ = ["MAX_PLAN_SECONDS", "MAX_STEPS", "check_mirror", "check_rollout"]

MAX_STEPS = 20
MAX_PLAN_SECONDS = 28_800  # 8 h of bakes
_DIVISORS = (1, 2, 4, 5, 10, 20, 25, 50)
# linear step sizes that reach 100 % in equal steps, MAX_STEPS of them at most: 5, 10, 20, 25, 50
_LINEAR_STEPS = tuple(d for d in _DIVISORS if 100 // d <= MAX_STEPS)
_LINEAR_HINT = f"use a divisor of 100 of {_LINEAR_STEPS[0]} or more: {', '.join(map(str, _LINEAR_STEPS[:-1]))} or {_LINEAR_STEPS[-1]}"


def check_rollout(loc: Loc, own: Rollout, base: Rollout | None) -> Iterator[Problem]:
    """A rollout as it takes effect; a problem caused by a field taken from ``base`` is left to
    the check of ``base`` itself (``defaults.rollout``), so it is reported once."""
    r = resolve_rollout(own, base)

    def mine(name: str) -> bool:
        return r.source[name] == "own"

    if r.strategy not in STEPPED_STRATEGIES:
        fields = (
            ("step_percent", r.step_percent),
            ("interval_seconds", r.interval_seconds),
            ("steps", r.steps),
            ("shadow", r.shadow),
        )
        for name, value in fields:
            if value is not None and mine(name):
                yield Problem(
                    f"rollout.{name.split('_')[0]}-forbidden",
                    f"{name} means nothing for strategy {r.strategy}: it moves all traffic in one step",
                    loc=(*loc, name),
                    hint=f"remove {name}, or choose strategy canary or linear",
                )
        return
    if r.steps is not None:
        yield from _check_steps(loc, r, mine)
    else:
        yield from _check_step_percent(loc, r, mine)
    yield from _check_duration(loc, r, mine)
    if (mine("strategy") or mine("guardrails")) and r.max_error_rate is None and r.max_p99_latency_ms is None:
        yield Problem(
            "rollout.unguarded",
            f"{r.strategy} rollout without guardrails: nothing would stop a bad step",
            loc=(*loc, "guardrails") if mine("guardrails") else (*loc, "strategy"),
            hint="add guardrails: {max_error_rate: 0.01, max_p99_latency_ms: 250} (or what this model can bear)",
            severity="warning",
        )


def _check_step_percent(loc: Loc, r: ResolvedRollout, mine: Callable[[str], bool]) -> Iterator[Problem]:
    what = "the first step" if r.strategy == "canary" else "each step"
    if r.step_percent is None:
        if mine("strategy"):
            example = "10" if r.strategy == "canary" else "a divisor of 100, e.g. 10, 20 or 25"
            yield Problem(
                "rollout.step-required",
                f"strategy {r.strategy} needs step_percent (the percent of traffic {what} moves)",
                loc=(*loc, "strategy"),
                hint=f"add step_percent: {example}",
            )
        return
    if not (mine("step_percent") or mine("strategy")):
        return
    step, at = r.step_percent, (*loc, "step_percent" if mine("step_percent") else "strategy")
    if r.strategy == "linear" and 100 % step:
        nearest = sorted(_LINEAR_STEPS, key=lambda d: (abs(d - step), d))[:2]
        yield Problem(
            "rollout.linear-step",
            f"linear steps of {step} % do not reach 100 % in equal steps",
            loc=at,
            hint=f"{_LINEAR_HINT} (nearest: {' or '.join(map(str, sorted(nearest)))})",
        )
    elif r.strategy == "linear" and 100 // step > MAX_STEPS:
        yield Problem(
            "rollout.too-many-steps",
            f"linear steps of {step} % take {100 // step} steps, more than the {MAX_STEPS} a rollout may take",
            loc=at,
            hint=_LINEAR_HINT,
        )
    elif step == 100:
        yield _single_step(at, f"a {r.strategy} step of 100 %", "a smaller step_percent")


def _check_steps(loc: Loc, r: ResolvedRollout, mine: Callable[[str], bool]) -> Iterator[Problem]:
    """An explicit steps list: cumulative percents rising to 100, MAX_STEPS at most, in place of step_percent."""
    if not mine("steps"):
        return
    steps, at = r.steps or (), (*loc, "steps")
    if mine("step_percent"):
        yield Problem(
            "rollout.steps-and-step",
            "step_percent and steps both say how the rollout steps: choose one",
            loc=(*loc, "step_percent"),
            hint="remove step_percent (the steps list replaces it), or remove steps",
        )
    for i, (before, after) in enumerate(pairwise(steps), start=1):
        if after <= before:
            yield Problem(
                "rollout.steps-order",
                f"step {i + 1} ({after} %) does not rise above step {i} ({before} %): "
                "each step puts more of the traffic on the new version",
                loc=(*at, i),
                hint="list the cumulative percents in rising order, e.g. [5, 25, 50, 100]",
            )
    if not steps or steps[-1] != 100:
        yield Problem(
            "rollout.steps-end",
            f"the last step is {steps[-1]} %: the rollout never reaches 100 %" if steps else "the steps list is empty",
            loc=(*at, len(steps) - 1) if steps else at,
            hint="end the list with 100 (all the traffic on the new version), e.g. [5, 25, 50, 100]",
        )
    if len(steps) > MAX_STEPS:
        yield Problem(
            "rollout.too-many-steps",
            f"{len(steps)} steps, more than the {MAX_STEPS} a rollout may take",
            loc=at,
            hint=f"list {MAX_STEPS} steps at most (each one bakes for interval_seconds)",
            at_key=True,
        )
    if steps == (100,):
        yield _single_step(at, f"a {r.strategy} rollout whose only step is 100 %", "more steps")


def _single_step(at: Loc, what: str, instead: str) -> Problem:
    return Problem(
        "rollout.single-step",
        f"{what} moves all traffic at once",
        loc=at,
        hint=f"use strategy all_at_once, or {instead}",
        severity="warning",
    )


def _check_duration(loc: Loc, r: ResolvedRollout, mine: Callable[[str], bool]) -> Iterator[Problem]:
    """The bakes of the whole plan (one after each step but the last, one after a shadow step)
    take MAX_PLAN_SECONDS at most; reported at the block that sets one of the fields they depend on."""
    interval = r.interval_seconds if r.interval_seconds is not None else DEFAULT_INTERVAL_SECONDS
    steps = EffectiveRollout(r.strategy, r.step_percent or 100, interval, explicit_steps=r.steps or ()).steps
    bakes = len(steps) - 1 + (r.shadow is not None)
    if len(steps) > MAX_STEPS or bakes * interval <= MAX_PLAN_SECONDS:
        return  # too many steps is its own problem
    own = [name for name in ("interval_seconds", "steps", "step_percent", "shadow", "strategy") if mine(name)]
    if not own:
        return
    total = bakes * interval
    shadow = " (a shadow step included)" if r.shadow is not None else ""
    yield Problem(
        "rollout.too-long",
        f"the rollout bakes {bakes} times{shadow} for {interval} s: {total:,} s ({total / 3600:.1f} h), "
        f"more than the {MAX_PLAN_SECONDS // 3600} h a rollout may take",
        loc=(*loc, own[0]),
        hint=f"use fewer steps, or an interval_seconds of {MAX_PLAN_SECONDS // bakes} or less",
    )


def check_mirror(loc: Loc, binding: Binding, versions: Mapping[str, Version | None]) -> Iterator[Problem]:
    """A binding's mirror (at ``loc``, the binding): a version of its model routed with weight 0
    (the router needs its replicas; it answers nothing) while another version answers, on an
    enabled binding. ``versions``: the model's versions by ``semver_key``."""
    mirror = binding.mirror
    if mirror is None:
        return
    at = (*loc, "mirror")
    if not binding.enabled:
        yield Problem(
            "mirror.disabled-binding",
            "the binding is disabled: it routes nothing, so there is nothing to mirror",
            loc=at,
            hint="remove mirror, or enable the binding",
            at_key=True,
        )
    key = semver_key(mirror.version)
    if key not in versions:
        yield Problem(
            "mirror.unknown-version",
            f"model {binding.model!r} has no version {mirror.version} to mirror requests to",
            loc=(*at, "version"),
            hint=known_choices(mirror.version, versions, "versions"),
        )
        return
    weights = {semver_key(route.version): route.weight for route in binding.routes}
    if key not in weights:
        yield Problem(
            "mirror.not-routed",
            f"mirrored version {mirror.version} is not among the binding's routes",
            loc=(*at, "version"),
            hint=f"add the route {{version: {mirror.version}, weight: 0}}: the router needs its replicas",
        )
    elif weights[key] > 0:
        yield Problem(
            "mirror.answers-traffic",
            f"mirrored version {mirror.version} answers {weights[key]} % of the traffic; a mirrored version answers none",
            loc=(*at, "version"),
            hint="set its route's weight to 0 (the shadow step), or remove mirror (the rollout is past it)",
        )
    elif not any(weight > 0 for version, weight in weights.items() if version != key):
        yield Problem(
            "mirror.no-live-version",
            f"no other version answers the binding's traffic: nothing to compare {mirror.version}'s answers with",
            loc=at,
            hint="route the traffic to the live version, with weight 0 for the mirrored one",
            at_key=True,
        )
