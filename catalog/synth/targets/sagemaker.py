"""The ``sagemaker`` target: SageMaker real-time endpoints through ``hashicorp/aws``.

Per environment, with its ``sagemaker:`` settings (region, execution role, image, artifact bucket,
instance type, alarm topic):

- per model version an ``aws_sagemaker_model``: the modelcat image (``modelcat serve``, which
  verifies the artifact's digest before ``/ping`` answers) with the artifact as one uncompressed S3
  object at its content-addressed path ``<artifact_bucket>/sha256/<first two hex>/<hex>``, and the
  model, version and digest in the container's environment. Its name holds the digest, so new bytes
  make a new model (created before the old one is destroyed);
- per binding (application x model) with replicas, an ``aws_sagemaker_endpoint_configuration`` with
  one production variant per route: ``route-1``, ``route-2``, ... in the catalog's order (SageMaker's
  guarded rollouts need the new configuration's variant names to be the old one's, so a variant is a
  route slot, not a version: upgrading the version behind a slot is a guarded rollout; adding or
  removing a route changes the variant set), ``initial_variant_weight`` = the route's weight,
  ``initial_instance_count`` = replicas (``min_replicas`` when autoscaled); a shadow step in force
  (``mirror:``) makes the mirrored route the shadow variant (``SageMakerEndpoint``; beside one
  production variant only, ``mirror_refusals``). Configurations are
  immutable: the name carries a hash of the content and the configuration is replaced
  create-before-destroy, so an update never deletes the configuration in use;
- per binding an ``aws_sagemaker_endpoint`` whose ``deployment_config`` is the rollout block:
  blue/green traffic routing ``ALL_AT_ONCE`` / ``CANARY`` (canary size = step_percent % of capacity)
  / ``LINEAR`` (step = step_percent %), or for a steps list the one of these that runs it
  (``traffic_routing``: ``[10, 100]`` a canary of 10 %, ``[25, 50, 75, 100]`` linear steps of 25 %),
  ``wait_interval_in_seconds`` = interval_seconds, and an auto-rollback on the guardrails'
  CloudWatch alarms;
- per guardrail an ``aws_cloudwatch_metric_alarm`` over all the endpoint's variants (metric math):
  the share of ``Invocation5XXErrors`` in ``Invocations`` above ``max_error_rate``, and the largest
  variant p99 of ``ModelLatency`` (microseconds) above ``max_p99_latency_ms``; they notify
  ``alarm_topic_arn`` when one is set;
- per variant of an autoscaled binding (``max_replicas > min_replicas >= 1``) an
  ``aws_appautoscaling_target`` (``sagemaker:variant:DesiredInstanceCount``, those bounds) and a
  target-tracking ``aws_appautoscaling_policy`` on concurrent requests per model copy =
  ``target_concurrency``.

SageMaker's limits (``binding_refusals``) are reported by ``validate`` at the field that asks, for
the environments deployed to sagemaker (and by ``synth --target sagemaker``), and refused at synth
with the application and model named: a canary step above 50 % (but below 100 %, which is all at
once), a linear step outside 10-50 %, a steps list that is neither a canary and 100 nor equal
steps, an interval above 3,600 s (the catalog's own bound too), a rollout that cannot finish
within the 8 h a blue/green deployment may run, more than 10 variants, or more variants than a
metric-math alarm can watch. Nothing secret is written: the provider block holds the
region only (credentials come from the environment of whoever runs Terraform), the role is an ARN.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from catalog.domain.deployment import BindingPlan, Endpoint, Environment, RoutePlan, resource_id
from catalog.domain.effective import EffectiveRollout
from catalog.domain.models import SageMakerSettings
from catalog.errors import UsageError
from catalog.synth.base import Bodies, Refusal, StackContext, mirrored_route, served_bindings, served_refusals
from catalog.synth.emit import add_resources, reference
from catalog.synth.kube import object_name
from catalog.synth.typed import ResourceKind, build_bodies, import_bindings

__all__ = [
    "ALARM",
    "CONFIG",
    "ENDPOINT",
    "MODEL",
    "SCALING_POLICY",
    "SCALING_TARGET",
    "SageMakerEndpoint",
    "SageMakerModel",
    "SageMakerTarget",
    "artifact_uri",
    "binding_refusals",
    "deployment_seconds",
    "load_modules",
    "mirror_refusals",
    "plan_endpoints",
    "refusals",
    "synthesize_bodies",
    "traffic_routing",
]

BINDINGS_PACKAGE = "cdktn_provider_aws"
PROVIDER_SOURCE = "hashicorp/aws"
PROVIDER_VERSION = "6.69.1"  # the provider version cdktn-provider-aws 25.8.1 wraps
MODULES = (
    "sagemaker_model",
    "sagemaker_endpoint_configuration",
    "sagemaker_endpoint",
    "cloudwatch_metric_alarm",
    "appautoscaling_target",
    "appautoscaling_policy",
)
MODEL = "aws_sagemaker_model"
CONFIG = "aws_sagemaker_endpoint_configuration"
ENDPOINT = "aws_sagemaker_endpoint"
ALARM = "aws_cloudwatch_metric_alarm"
SCALING_TARGET = "aws_appautoscaling_target"
SCALING_POLICY = "aws_appautoscaling_policy"

MAX_VARIANTS = 10  # production variants per endpoint configuration
MAX_ALARM_METRICS = 10  # metrics (not expressions) one metric-math alarm may query
MAX_CANARY_PERCENT = 50
LINEAR_PERCENT = (10, 50)
MAX_WAIT_SECONDS = 3600
MAX_DEPLOYMENT_SECONDS = 28_800
MIN_DEPLOYMENT_SECONDS = 600
PROVISIONING_SECONDS = 1_800  # headroom for the new fleet's instances to start and load the model
ALARM_PERIOD_SECONDS = 60
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
CONCURRENCY_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
_TRAFFIC_TYPE = {"all_at_once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}


def artifact_uri(endpoint: Endpoint, settings: SageMakerSettings) -> str:
    """Where SageMaker downloads ``endpoint``'s artifact: its content-addressed path in the bucket."""
    hexdigest = endpoint.digest.removeprefix("sha256:")
    return f"{settings.artifact_bucket.rstrip('/')}/sha256/{hexdigest[:2]}/{hexdigest}"


def _tags(endpoint: Endpoint, *, version: bool) -> dict[str, str]:
    """AWS tags (values of letters, digits, spaces and ``_.:/=+-@``: a version and a digest fit)."""
    tags = {"modelcat/environment": endpoint.environment, "modelcat/model": endpoint.model}
    if version:
        tags |= {"modelcat/version": endpoint.version, "modelcat/digest": endpoint.digest}
    return tags


@dataclass(frozen=True)
class SageMakerModel:
    """One model version in one environment (shared by the applications that route to it)."""

    endpoint: Endpoint
    settings: SageMakerSettings

    @property
    def id(self) -> str:
        return resource_id(self.endpoint.model, self.endpoint.version)

    @cached_property
    def name(self) -> str:
        e = self.endpoint
        return object_name(e.model, e.version, e.digest.removeprefix("sha256:")[:12])


@dataclass(frozen=True)
class Variant:
    name: str  # route-1, route-2, ...: a route slot (see the module docstring)
    route: RoutePlan
    model: SageMakerModel

    @property
    def instances(self) -> int:
        s = self.route.endpoint.serving
        return s.min_replicas if _autoscaled(self.route.endpoint) else s.replicas


def _autoscaled(endpoint: Endpoint) -> bool:
    s = endpoint.serving
    return s.max_replicas > s.min_replicas >= 1


@dataclass(frozen=True)
class SageMakerEndpoint:
    """One binding's endpoint: its variants, its rollout and its alarms, and the shadow variant of a
    shadow step in force: the mirrored route, not a production variant; one per endpoint, beside one
    production variant (``mirror_refusals``), weighted the mirror's percent of the production
    variant's weight (SageMaker copies to it that share of requests); no alarm or autoscaling."""

    binding: BindingPlan
    variants: tuple[Variant, ...]
    settings: SageMakerSettings
    shadow: Variant | None = None

    @property
    def first(self) -> Endpoint:
        return self.variants[0].route.endpoint

    @property
    def id(self) -> str:
        return resource_id(self.first.application, self.binding.model)

    @property
    def rollout(self) -> EffectiveRollout:
        return self.binding.rollout

    @cached_property
    def name(self) -> str:
        return object_name(self.first.application, self.binding.model)

    @cached_property
    def config_name(self) -> str:
        """Named by its content: any change is a new configuration (create before destroy)."""
        content: list[Any] = [
            (v.name, v.model.name, v.route.weight, v.instances, self.settings.instance_type) for v in self.variants
        ]
        if self.shadow is not None:  # without one, the names configurations had before shadow variants
            v = self.shadow
            content.append(("shadow", v.name, v.model.name, self.shadow_weight, v.instances))
        digest = hashlib.sha256(json.dumps(content).encode()).hexdigest()[:10]
        return object_name(self.first.application, self.binding.model, digest)

    @property
    def shadow_weight(self) -> float:
        assert self.binding.mirror is not None and len(self.variants) == 1  # mirror_refusals
        weight = self.variants[0].route.weight * self.binding.mirror.percent / 100
        return int(weight) if weight.is_integer() else weight

    @property
    def alarms(self) -> tuple[str, ...]:
        """The guardrails this endpoint has an alarm for: ``error-rate`` and/or ``p99-latency``."""
        r = self.rollout
        return tuple(
            kind
            for kind, limit in (("error-rate", r.max_error_rate), ("p99-latency", r.max_p99_latency_ms))
            if limit is not None
        )

    def alarm_name(self, kind: str) -> str:
        return f"{self.name}-{kind}"

    def alarm_id(self, kind: str) -> str:
        return resource_id(self.first.application, self.binding.model, kind)

    @property
    def deployment_seconds(self) -> int:
        return deployment_seconds(self.rollout)

    @property
    def tags(self) -> dict[str, str]:
        tags = {"modelcat/application": self.first.application, **_tags(self.first, version=False)}
        tags |= {f"modelcat/{v.name}": v.route.version for v in self.variants}
        if self.shadow is not None and self.binding.mirror is not None:
            tags[f"modelcat/{self.shadow.name}"] = self.shadow.route.version
            tags["modelcat/shadow"] = f"{self.shadow.name} {self.binding.mirror.percent} percent"
        if self.binding.sticky_key:  # SageMaker splits per request: recorded, not enforced
            tags["modelcat/sticky-key"] = self.binding.sticky_key
        return tags


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


def refusals(env: Environment) -> list[Refusal]:
    return served_refusals(env, binding_refusals, mirror_refusals)


def plan_endpoints(context: StackContext) -> tuple[list[SageMakerModel], list[SageMakerEndpoint]]:
    """The environment's models (one per version routed to) and endpoints (one per binding with replicas)."""
    env = context.environment
    settings = env.sagemaker
    if settings is None:
        raise UsageError(f"environment {env.name!r} has no sagemaker: block")
    models: dict[str, SageMakerModel] = {}
    endpoints = []
    for refusal in refusals(env):
        raise refusal.error()
    for _, binding in served_bindings(env):
        variants, shadow, mirrored = [], None, mirrored_route(binding)
        for i, route in enumerate(binding.routes, start=1):
            model = SageMakerModel(route.endpoint, settings)
            model = models.setdefault(model.id, model)
            if model.endpoint.digest != route.endpoint.digest:  # the catalog has one digest per version
                raise RuntimeError(f"{model.id}: two digests for one version")
            variant = Variant(f"route-{i}", route, model)
            if route is mirrored:
                shadow = variant
            else:
                variants.append(variant)
        endpoints.append(SageMakerEndpoint(binding, tuple(variants), settings, shadow))
    return [models[key] for key in sorted(models)], endpoints


def sagemaker_model(k: Any, m: SageMakerModel) -> Any:
    e = m.endpoint
    source = k.SagemakerModelPrimaryContainerModelDataSourceS3DataSource(
        s3_uri=artifact_uri(e, m.settings), s3_data_type="S3Object", compression_type="None"
    )
    container = k.SagemakerModelPrimaryContainer(
        image=m.settings.image,
        model_data_source=k.SagemakerModelPrimaryContainerModelDataSource(s3_data_source=[source]),
        environment={"MODELCAT_MODEL": e.model, "MODELCAT_VERSION": e.version, "MODELCAT_DIGEST": e.digest},
    )
    return k.SagemakerModelConfig(
        name=m.name,
        execution_role_arn=m.settings.execution_role_arn,
        primary_container=container,
        tags=_tags(e, version=True),
    )


def endpoint_configuration(k: Any, ep: SageMakerEndpoint) -> Any:
    def variant(cls: str, v: Variant, weight: float) -> Any:
        return getattr(k, cls)(
            variant_name=v.name,
            model_name=reference(MODEL, v.model.id, "name"),
            initial_instance_count=v.instances,
            initial_variant_weight=weight,
            instance_type=ep.settings.instance_type,
        )

    production = [variant("SagemakerEndpointConfigurationProductionVariants", v, v.route.weight) for v in ep.variants]
    shadow = None
    if ep.shadow is not None:
        shadow = [variant("SagemakerEndpointConfigurationShadowProductionVariants", ep.shadow, ep.shadow_weight)]
    return k.SagemakerEndpointConfigurationConfig(
        name=ep.config_name, production_variants=production, shadow_production_variants=shadow, tags=ep.tags
    )


def _traffic(k: Any, r: EffectiveRollout) -> Any:
    routing = traffic_routing(r)
    if routing is None:  # binding_refusals refuses it before
        raise RuntimeError(f"no SageMaker traffic routing runs steps {r.explicit_steps}")
    kind, percent = routing
    size = {"type": "CAPACITY_PERCENT", "value": percent}
    prefix = "SagemakerEndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfiguration"
    return getattr(k, prefix)(
        type=kind,
        wait_interval_in_seconds=r.interval_seconds,
        canary_size=getattr(k, prefix + "CanarySize")(**size) if kind == "CANARY" else None,
        linear_step_size=getattr(k, prefix + "LinearStepSize")(**size) if kind == "LINEAR" else None,
    )


def sagemaker_endpoint(k: Any, ep: SageMakerEndpoint) -> Any:
    policy = k.SagemakerEndpointDeploymentConfigBlueGreenUpdatePolicy(
        traffic_routing_configuration=_traffic(k, ep.rollout),
        maximum_execution_timeout_in_seconds=ep.deployment_seconds,
    )
    rollback = None
    if ep.alarms:
        alarms = [
            k.SagemakerEndpointDeploymentConfigAutoRollbackConfigurationAlarms(
                alarm_name=reference(ALARM, ep.alarm_id(kind), "alarm_name")
            )
            for kind in ep.alarms
        ]
        rollback = k.SagemakerEndpointDeploymentConfigAutoRollbackConfiguration(alarms=alarms)
    return k.SagemakerEndpointConfig(
        name=ep.name,
        endpoint_config_name=reference(CONFIG, ep.id, "name"),
        deployment_config=k.SagemakerEndpointDeploymentConfig(
            blue_green_update_policy=policy, auto_rollback_configuration=rollback
        ),
        tags=ep.tags,
    )


@dataclass(frozen=True)
class Alarm:
    endpoint: SageMakerEndpoint
    kind: str  # error-rate | p99-latency


def _metric(k: Any, query_id: str, ep: SageMakerEndpoint, variant: str, metric: str, stat: str) -> Any:
    return k.CloudwatchMetricAlarmMetricQuery(
        id=query_id,
        return_data=False,
        metric=k.CloudwatchMetricAlarmMetricQueryMetric(
            namespace="AWS/SageMaker",
            metric_name=metric,
            dimensions={"EndpointName": ep.name, "VariantName": variant},
            stat=stat,
            period=ALARM_PERIOD_SECONDS,
        ),
    )


def _alarm_queries(k: Any, alarm: Alarm) -> tuple[list[Any], float, str]:
    ep = alarm.endpoint
    n = range(1, len(ep.variants) + 1)
    if alarm.kind == "error-rate":
        queries = [
            _metric(k, f"errors{i}", ep, v.name, "Invocation5XXErrors", "Sum")
            for i, v in zip(n, ep.variants, strict=True)
        ]
        queries += [
            _metric(k, f"calls{i}", ep, v.name, "Invocations", "Sum") for i, v in zip(n, ep.variants, strict=True)
        ]
        errors = "+".join(f"errors{i}" for i in n)
        calls = "+".join(f"calls{i}" for i in n)
        expression = f"IF(({calls}) > 0, ({errors}) / ({calls}), 0)"
        queries.append(
            k.CloudwatchMetricAlarmMetricQuery(
                id="error_rate", expression=expression, label="5XX share", return_data=True
            )
        )
        limit = float(ep.rollout.max_error_rate or 0)
        return queries, limit, f"share of 5XX responses above {limit:g}"
    queries = [_metric(k, f"p99_{i}", ep, v.name, "ModelLatency", "p99") for i, v in zip(n, ep.variants, strict=True)]
    expression = "MAX([" + ",".join(f"p99_{i}" for i in n) + "])"
    queries.append(
        k.CloudwatchMetricAlarmMetricQuery(
            id="p99_latency", expression=expression, label="p99 ModelLatency (us)", return_data=True
        )
    )
    ms = ep.rollout.max_p99_latency_ms or 0
    return queries, float(ms * 1000), f"p99 model latency above {ms} ms"


def cloudwatch_alarm(k: Any, alarm: Alarm) -> Any:
    ep = alarm.endpoint
    queries, threshold, what = _alarm_queries(k, alarm)
    periods = min(3, max(1, ep.rollout.interval_seconds // ALARM_PERIOD_SECONDS))
    topic = [ep.settings.alarm_topic_arn] if ep.settings.alarm_topic_arn else None
    return k.CloudwatchMetricAlarmConfig(
        alarm_name=ep.alarm_name(alarm.kind),
        alarm_description=(
            f"modelcat rollout guardrail of application {ep.first.application}, model {ep.binding.model}: "
            f"{what}; trips SageMaker's auto-rollback"
        ),
        comparison_operator="GreaterThanThreshold",
        threshold=threshold,
        evaluation_periods=periods,
        datapoints_to_alarm=min(periods, 2),
        treat_missing_data="notBreaching",
        metric_query=queries,
        alarm_actions=topic,
        tags={"modelcat/application": ep.first.application, "modelcat/model": ep.binding.model},
    )


@dataclass(frozen=True)
class Scaling:
    endpoint: SageMakerEndpoint
    variant: Variant

    @property
    def id(self) -> str:
        return resource_id(self.endpoint.first.application, self.endpoint.binding.model, self.variant.name)


def scaling_target(k: Any, s: Scaling) -> Any:
    serving = s.variant.route.endpoint.serving
    return k.AppautoscalingTargetConfig(
        service_namespace="sagemaker",
        scalable_dimension=SCALABLE_DIMENSION,
        resource_id=f"endpoint/{reference(ENDPOINT, s.endpoint.id, 'name')}/variant/{s.variant.name}",
        min_capacity=serving.min_replicas,
        max_capacity=serving.max_replicas,
    )


def scaling_policy(k: Any, s: Scaling) -> Any:
    tracking = k.AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
        target_value=float(s.variant.route.endpoint.serving.target_concurrency),
        predefined_metric_specification=k.AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
            predefined_metric_type=CONCURRENCY_METRIC
        ),
    )
    return k.AppautoscalingPolicyConfig(
        name=f"{s.endpoint.name}-{s.variant.name}-concurrency",
        policy_type="TargetTrackingScaling",
        service_namespace=reference(SCALING_TARGET, s.id, "service_namespace"),
        scalable_dimension=reference(SCALING_TARGET, s.id, "scalable_dimension"),
        resource_id=reference(SCALING_TARGET, s.id, "resource_id"),
        target_tracking_scaling_policy_configuration=tracking,
    )


_CREATE_BEFORE_DESTROY = {"create_before_destroy": True}


def synthesize_bodies(context: StackContext, modules: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``{resource type: {id: body}}`` of the environment: the stack's resources, without the stack."""
    if modules is None:
        modules = load_modules()
    models, endpoints = plan_endpoints(context)

    def kind(resource_type: str, module: str, build: Any, variant: Any = lambda item: None) -> ResourceKind[Any]:
        return ResourceKind(resource_type, (modules[module],), build, variant)

    alarms = [Alarm(ep, name) for ep in endpoints for name in ep.alarms]
    scalings = [Scaling(ep, v) for ep in endpoints for v in ep.variants if _autoscaled(v.route.endpoint)]
    out = {
        MODEL: build_bodies(kind(MODEL, "sagemaker_model", sagemaker_model), ((m.id, m) for m in models)),
        CONFIG: build_bodies(
            kind(CONFIG, "sagemaker_endpoint_configuration", endpoint_configuration, lambda ep: ep.shadow is not None),
            ((ep.id, ep) for ep in endpoints),
        ),
        ENDPOINT: build_bodies(
            kind(ENDPOINT, "sagemaker_endpoint", sagemaker_endpoint, lambda ep: (ep.rollout.strategy, bool(ep.alarms))),
            ((ep.id, ep) for ep in endpoints),
        ),
        ALARM: build_bodies(
            kind(
                ALARM,
                "cloudwatch_metric_alarm",
                cloudwatch_alarm,
                lambda a: (a.kind, bool(a.endpoint.settings.alarm_topic_arn)),
            ),
            ((a.endpoint.alarm_id(a.kind), a) for a in alarms),
        ),
        SCALING_TARGET: build_bodies(
            kind(SCALING_TARGET, "appautoscaling_target", scaling_target), ((s.id, s) for s in scalings)
        ),
        SCALING_POLICY: build_bodies(
            kind(SCALING_POLICY, "appautoscaling_policy", scaling_policy), ((s.id, s) for s in scalings)
        ),
    }
    for resource_type in (MODEL, CONFIG):  # immutable in SageMaker: replaced, the new one first
        for body in out[resource_type].values():
            body["lifecycle"] = dict(_CREATE_BEFORE_DESTROY)
    return {key: bodies for key, bodies in out.items() if bodies}


def load_modules() -> dict[str, Any]:
    try:
        loaded = import_bindings(BINDINGS_PACKAGE, *MODULES)
    except ModuleNotFoundError as e:
        raise UsageError("the sagemaker target needs cdktn-provider-aws: pip install 'modelcat[sagemaker]'") from e
    return dict(zip(MODULES, loaded, strict=True))


def add_provider(stack: Any, settings: SageMakerSettings) -> None:
    """The ``aws`` provider block with the region only: credentials come from the environment
    (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``..., an instance or pod role), never from the catalog."""
    from cdktn import TerraformProvider, TerraformProviderGeneratorMetadata

    provider = TerraformProvider(
        stack,
        "aws",
        terraform_resource_type="aws",
        terraform_provider_source=PROVIDER_SOURCE,
        terraform_generator_metadata=TerraformProviderGeneratorMetadata(
            provider_name="aws", provider_version=PROVIDER_VERSION
        ),
    )
    provider.add_override("region", settings.region)


class SageMakerTarget:
    """SageMaker models, endpoint configurations, endpoints, alarms and autoscaling per environment."""

    name = "sagemaker"

    def refusals(self, environment: Environment) -> list[Refusal]:
        return refusals(environment)

    def bodies(self, context: StackContext) -> Bodies:
        return synthesize_bodies(context)

    def build(self, stack: Any, context: StackContext) -> None:
        resources = synthesize_bodies(context)
        settings = context.environment.sagemaker
        assert settings is not None  # plan_endpoints refused an environment without one
        add_provider(stack, settings)
        for kind in sorted(resources):
            add_resources(stack, kind, resources[kind])
