"""What the ``sagemaker`` target cannot run: SageMaker's own limits, the one definition of each.

Reported by ``validate`` at the field that asks, for the environments deployed to sagemaker (and by
``synth --target sagemaker``), and refused at synth (``plan_endpoints``) with the application and
model named: a canary step above 50 % (but below 100 %, which is all at once), a linear step
outside 10-50 %, a steps list that is neither a canary and 100 nor equal steps, an interval above
3,600 s (the catalog's own bound too), a rollout that cannot finish within the 8 h a blue/green
deployment may run, more than 10 variants, more variants than a metric-math alarm can watch, and a
shadow variant beside more than one production variant (one shadow variant per endpoint holds by
construction: a binding has one mirror), and a secret with no Secrets Manager name (SageMaker's
containers reach no Vault: each secret must be mirrored to Secrets Manager). Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from catalog.domain.deployment import BindingPlan, Environment
from catalog.domain.effective import EffectiveRollout
from catalog.synth.base import Refusal, mirrored_route, served_refusals

__all__ = [
    "LINEAR_PERCENT",
    "MAX_ALARM_METRICS",
    "MAX_CANARY_PERCENT",
    "MAX_DEPLOYMENT_SECONDS",
    "MAX_VARIANTS",
    "MAX_WAIT_SECONDS",
    "MIN_DEPLOYMENT_SECONDS",
    "PROVISIONING_SECONDS",
    "binding_refusals",
    "deployment_seconds",
    "mirror_refusals",
    "refusals",
    "secret_refusals",
    "traffic_routing",
]

MAX_VARIANTS = 10  # production variants per endpoint configuration
MAX_ALARM_METRICS = 10  # metrics (not expressions) one metric-math alarm may query
MAX_CANARY_PERCENT = 50
LINEAR_PERCENT = (10, 50)
MAX_WAIT_SECONDS = 3600
MAX_DEPLOYMENT_SECONDS = 28_800
MIN_DEPLOYMENT_SECONDS = 600
PROVISIONING_SECONDS = 1_800  # headroom for the new fleet's instances to start and load the model
_TRAFFIC_TYPE = {"all_at_once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}


def deployment_seconds(rollout: EffectiveRollout) -> int:
    """How long a blue/green deployment of ``rollout`` may take: provisioning, then every step's wait."""
    return max(MIN_DEPLOYMENT_SECONDS, PROVISIONING_SECONDS + rollout.interval_seconds * len(rollout.steps))


def mirror_refusals(application: str, binding: BindingPlan) -> Iterator[Refusal]:
    """What SageMaker cannot run of a shadow step in force: an endpoint with a shadow variant holds
    one production variant (and one shadow variant, which a binding's one mirror always is)."""
    shadow = mirrored_route(binding)
    if binding.mirror is None or shadow is None:
        return
    live = [r for r in binding.routes if r is not shadow]
    if len(live) != 1:
        versions = ", ".join(f"{r.version} ({r.weight} %)" for r in live)
        yield Refusal(
            "sagemaker.shadow-production-variants",
            application,
            binding.model,
            ("mirror",),
            f"a SageMaker endpoint with a shadow variant holds one production variant, and the binding "
            f"routes {len(live)} versions beside the mirrored {binding.mirror.version}: {versions}",
            f"route only the live version (weight 100) beside {binding.mirror.version} during the shadow step",
        )


def binding_refusals(application: str, binding: BindingPlan) -> Iterator[Refusal]:
    """What SageMaker cannot run of one served binding: the one definition of its limits, which
    ``validate`` reports with their lines and ``plan_endpoints`` raises."""
    r, variants = binding.rollout, len(binding.routes)

    def refusal(code: str, field: tuple[str, ...], message: str, hint: str) -> Refusal:
        return Refusal(f"sagemaker.{code}", application, binding.model, field, message, hint)

    if variants > MAX_VARIANTS:
        yield refusal(
            "variants",
            ("routes",),
            f"a SageMaker endpoint holds {MAX_VARIANTS} variants at most, the binding routes {variants}",
            f"route {MAX_VARIANTS} versions at most, or deploy this environment to kubernetes",
        )
    yield from _traffic_refusals(r, refusal)
    if r.interval_seconds > MAX_WAIT_SECONDS:  # the catalog's own bound too; a guard for plans built otherwise
        yield refusal(
            "wait",
            ("rollout", "interval_seconds"),
            f"SageMaker waits {MAX_WAIT_SECONDS} s at most between steps, the rollout asks for {r.interval_seconds} s",
            f"use an interval_seconds of {MAX_WAIT_SECONDS} or less",
        )
    elif deployment_seconds(r) > MAX_DEPLOYMENT_SECONDS:
        yield refusal(
            "deployment-time",
            ("rollout", "interval_seconds"),
            f"the rollout's {len(r.steps)} steps of {r.interval_seconds} s plus {PROVISIONING_SECONDS} s to provision "
            f"take {deployment_seconds(r)} s, longer than the {MAX_DEPLOYMENT_SECONDS} s a SageMaker deployment may run",
            "use fewer or shorter steps",
        )
    if r.max_error_rate is not None and 2 * variants > MAX_ALARM_METRICS:
        yield refusal(
            "alarm-variants",
            ("routes",),
            f"the error-rate guardrail's alarm can watch {MAX_ALARM_METRICS // 2} variants at most, the binding routes {variants}",
            f"route {MAX_ALARM_METRICS // 2} versions at most, or leave max_error_rate out of this binding's guardrails",
        )


def traffic_routing(r: EffectiveRollout) -> tuple[str, int] | None:
    """The blue/green traffic routing that runs ``r``: (ALL_AT_ONCE, CANARY or LINEAR, size in % of
    capacity). SageMaker moves a canary and then the rest, or equal linear steps (the last one the
    remainder); a steps list of another shape has none (None)."""
    if not r.explicit_steps:
        return (_TRAFFIC_TYPE[r.strategy], r.step_percent) if r.step_percent < 100 else ("ALL_AT_ONCE", 100)
    first = r.explicit_steps[0]
    if r.explicit_steps == (100,):
        return "ALL_AT_ONCE", 100
    shapes = sorted(("canary", "linear"), key=lambda strategy: strategy != r.strategy)  # the declared one first
    for strategy in shapes:
        if EffectiveRollout(strategy, first).steps == r.explicit_steps:
            return _TRAFFIC_TYPE[strategy], first
    return None


def _traffic_refusals(
    r: EffectiveRollout, refusal: Callable[[str, tuple[str, ...], str, str], Refusal]
) -> Iterator[Refusal]:
    """A rollout plan SageMaker's traffic routing cannot run: a steps list of no canary or linear
    shape, a canary above MAX_CANARY_PERCENT, linear steps outside LINEAR_PERCENT."""
    field, what = (
        (("rollout", "steps"), "a first step") if r.explicit_steps else (("rollout", "step_percent"), "a step_percent")
    )
    routing = traffic_routing(r)
    if routing is None:
        yield refusal(
            "steps",
            field,
            "SageMaker's traffic routing moves a canary and then the rest, or equal linear steps, "
            f"the rollout asks for steps of {', '.join(map(str, r.explicit_steps))} %",
            "list a canary and 100 (e.g. [10, 100]) or equal steps (e.g. [25, 50, 75, 100]), or use step_percent",
        )
        return
    kind, size = routing
    if kind == "CANARY" and size > MAX_CANARY_PERCENT:
        yield refusal(
            "canary-step",
            field,
            f"SageMaker's canary step is {MAX_CANARY_PERCENT} % of capacity at most, the rollout asks for {size} %",
            f"use {what} of {MAX_CANARY_PERCENT} or less (or 100: all at once)",
        )
    low, high = LINEAR_PERCENT
    if kind == "LINEAR" and not low <= size <= high:
        steps = [d for d in range(low, high + 1) if 100 % d == 0]
        yield refusal(
            "linear-step",
            field,
            f"SageMaker's linear steps are {low}-{high} % of capacity, the rollout asks for {size} %",
            f"use {what} of {', '.join(map(str, steps[:-1]))} or {steps[-1]}",
        )


def secret_refusals(env: Environment) -> list[Refusal]:
    """Each of the environment's secrets that names no Secrets Manager secret (``secrets_manager``)."""
    return [
        Refusal(
            "sagemaker.secret-source",
            "",
            "",
            ("secrets", i),
            f"secret {secret.name!r} ({secret.vault}) has no secrets_manager: a SageMaker container reads its "
            "secrets from AWS Secrets Manager with the execution role, never from Vault",
            "give it secrets_manager: the name of the Secrets Manager secret holding the same value",
            environment=env.name,
        )
        for i, secret in enumerate(env.secrets)
        if secret.secrets_manager is None
    ]


def refusals(env: Environment) -> list[Refusal]:
    return served_refusals(env, binding_refusals, mirror_refusals) + secret_refusals(env)
