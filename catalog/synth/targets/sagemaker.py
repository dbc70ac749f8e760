"""The ``sagemaker`` target: SageMaker real-time endpoints through ``hashicorp/aws``.

Per environment, with its ``sagemaker:`` settings (region, execution role, image, artifact bucket,
instance type, alarm topic):

- per model version an ``aws_sagemaker_model``: the modelcat image (``modelcat serve``, which
  verifies the artifact's digest before ``/ping`` answers) with the artifact as one uncompressed S3
  object at its content-addressed path ``<artifact_bucket>/sha256/<first two hex>/<hex>``, and the
  model, version and digest in the container's environment, and the environment's secrets by
  their Secrets Manager names (``MODELCAT_SECRETS``: ``{NAME: {secrets_manager, field}}``, read by
  the container with the execution role, into ``MODELCAT_SECRETS_DIR``; never a value). Its name holds the digest, so new bytes
  make a new model (created before the old one is destroyed);
- per binding (application x model) with replicas, an ``aws_sagemaker_endpoint_configuration`` with
  one production variant per route: ``route-1``, ``route-2``, ... in the catalog's order (SageMaker's
  guarded rollouts need the new configuration's variant names to be the old one's, so a variant is a
  route slot, not a version: upgrading the version behind a slot is a guarded rollout; adding or
  removing a route changes the variant set), ``initial_variant_weight`` = the route's weight,
  ``initial_instance_count`` = replicas (``min_replicas`` when autoscaled); a shadow step in force
  (``mirror:``) makes the mirrored route the shadow variant (``SageMakerEndpoint``; beside one
  production variant only, ``sagemaker_limits.mirror_refusals``). Configurations are
  immutable: the name carries a hash of the content and the configuration is replaced
  create-before-destroy, so an update never deletes the configuration in use;
- per binding an ``aws_sagemaker_endpoint`` whose ``deployment_config`` is the rollout block:
  blue/green traffic routing ``ALL_AT_ONCE`` / ``CANARY`` (canary size = step_percent % of capacity)
  / ``LINEAR`` (step = step_percent %), or for a steps list the one of these that runs it
  (``sagemaker_limits.traffic_routing``: ``[10, 100]`` a canary of 10 %, ``[25, 50, 75, 100]``
  linear steps of 25 %), ``wait_interval_in_seconds`` = interval_seconds, and an auto-rollback on
  the guardrails' CloudWatch alarms;
- per guardrail an ``aws_cloudwatch_metric_alarm`` over all the endpoint's variants (metric math):
  the share of ``Invocation5XXErrors`` in ``Invocations`` above ``max_error_rate``, and the largest
  variant p99 of ``ModelLatency`` (microseconds) above ``max_p99_latency_ms``; they notify
  ``alarm_topic_arn`` when one is set;
- per variant of an autoscaled binding (``max_replicas > min_replicas >= 1``) an
  ``aws_appautoscaling_target`` (``sagemaker:variant:DesiredInstanceCount``, those bounds) and a
  target-tracking ``aws_appautoscaling_policy`` on concurrent requests per model copy =
  ``target_concurrency``.

SageMaker's limits are ``sagemaker_limits``'s (reported by ``validate``, raised at synth). Nothing
secret is written: the provider block holds the region only (credentials come from the environment
of whoever runs Terraform), the role is an ARN.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from catalog.domain.bodies import SECRETS_DIR_ENV
from catalog.domain.deployment import BindingPlan, Endpoint, Environment, RoutePlan, resource_id
from catalog.domain.effective import EffectiveRollout
from catalog.domain.models import SageMakerSettings
from catalog.errors import UsageError
from catalog.synth.base import Bodies, Refusal, StackContext, mirrored_route, served_bindings
from catalog.synth.emit import add_resources, reference
from catalog.synth.kube import object_name
from catalog.synth.targets.sagemaker_limits import deployment_seconds, refusals, traffic_routing
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
    "load_modules",
    "plan_endpoints",
    "synthesize_bodies",
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

ALARM_PERIOD_SECONDS = 60
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
CONCURRENCY_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"


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
        """Named by its digest, and by the secrets it names when it has any: a change of either is
        a new model (the container's environment cannot change in place), created before the old
        one is destroyed, so the two need different names."""
        e = self.endpoint
        parts = [e.model, e.version, e.digest.removeprefix("sha256:")[:12]]
        if e.secrets:
            parts.append(hashlib.sha256(container_environment(e)[SECRETS_ENV].encode()).hexdigest()[:8])
        return object_name(*parts)


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


SECRETS_ENV = "MODELCAT_SECRETS"
SECRETS_DIR = "/opt/ml/secrets"  # where the container writes the files it reads from Secrets Manager


def container_environment(e: Endpoint) -> dict[str, str]:
    """The model container's environment: what it serves and, by name only, the secrets it reads."""
    env = {"MODELCAT_MODEL": e.model, "MODELCAT_VERSION": e.version, "MODELCAT_DIGEST": e.digest}
    if e.secrets:  # secret_refusals: each names its Secrets Manager secret
        named = {
            s.name: {"secrets_manager": s.secrets_manager, **({"field": s.field} if s.field else {})} for s in e.secrets
        }
        env |= {SECRETS_ENV: json.dumps(named, sort_keys=True, separators=(",", ":")), SECRETS_DIR_ENV: SECRETS_DIR}
    return env


def sagemaker_model(k: Any, m: SageMakerModel) -> Any:
    e = m.endpoint
    source = k.SagemakerModelPrimaryContainerModelDataSourceS3DataSource(
        s3_uri=artifact_uri(e, m.settings), s3_data_type="S3Object", compression_type="None"
    )
    container = k.SagemakerModelPrimaryContainer(
        image=m.settings.image,
        model_data_source=k.SagemakerModelPrimaryContainerModelDataSource(s3_data_source=[source]),
        environment=container_environment(e),
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
