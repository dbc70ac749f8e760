"""The ``kubernetes`` target, per routed version (endpoint), in the environment's namespace:

- a Deployment (``kubernetes_deployment_v1``) of the modelcat image: an init container runs
  ``modelcat fetch`` (the artifact by digest, from ``artifact_source``, hashed while it is written
  into an ``emptyDir`` and refused unless digest and size match; for a signed version, or in an
  environment whose trust policy requires signatures, its bundle too, by digest from the same
  source, and the signature verified against the trusted keys, written in the manifest as PEM text
  or Vault references the init container reads from its VAULT_ADDR: a bad, untrusted or missing
  required signature fails the pod before anything serves), then the replica container runs
  ``modelcat replica`` on those bytes (which it verifies again, signature included) on port 8080
  (``http``) and OIP gRPC on 8081 (``grpc``), with startup,
  readiness (``/v2/health/ready``) and liveness (``/v2/health/live``) probes. Replicas are
  ``min_replicas`` when an HPA manages them (and Terraform then ignores later changes of the
  count, so an apply never fights the HPA), else ``replicas``. The rollout block maps to the
  RollingUpdate strategy: ``maxSurge`` = step_percent (100 % for all_at_once), ``maxUnavailable``
  0; the whole block is the ``modelcat/rollout`` annotation (intervals and guardrails are not
  enforced by plain Kubernetes: docs/targets/kubernetes.md).
- a Service (port 80 to the container's ``http`` port, 8081 to its ``grpc`` port with
  ``appProtocol: kubernetes.io/h2c``);
- an ``autoscaling/v2`` HorizontalPodAutoscaler when ``max_replicas > min_replicas >= 1``: a Pods
  metric ``modelcat_replica_inferences_in_flight`` (a gauge every replica exports) averaging
  ``target_concurrency`` per pod, plus CPU utilization 80 % when the serving block requests CPU;
- a PodDisruptionBudget (``maxUnavailable: 1``) when ``min_replicas >= 2``: a version that asks
  for two replicas at least keeps all but one through a node drain, in any environment;
- the environment's secrets: the Vault Agent Injector's annotations on the pod template
  (``catalog.synth.kube.vault_agent_annotations``, the settings' ``vault_role``), and the replica's
  ``MODELCAT_SECRETS_DIR`` pointing at the files the agent renders (refused without a role).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from catalog.artifacts.fetch import TOKEN_ENV
from catalog.domain.bodies import SECRETS_DIR_ENV, signature_fields
from catalog.domain.deployment import Endpoint, Environment
from catalog.domain.effective import EffectiveRollout
from catalog.domain.models import KubernetesSettings
from catalog.errors import UsageError
from catalog.synth.base import Refusal, StackContext
from catalog.synth.kube import (
    SECRETS_MOUNT,
    endpoint_annotations,
    endpoint_labels,
    object_name,
    rollout_annotation,
    vault_agent_annotations,
    vault_agent_refusals,
)
from catalog.synth.targets.kubernetes.common import (
    CONTAINER_PORT,
    DEPLOYMENT,
    GRPC_PORT,
    SPEC,
    budget_body,
    container,
    container_security,
    metadata,
    pod_security,
    pull_secrets,
    service_body,
)
from catalog.synth.typed import ResourceKind

__all__ = [
    "ARTIFACT_PATH",
    "IN_FLIGHT_METRIC",
    "MODULES",
    "Serving",
    "artifact_refusal",
    "endpoint_kinds",
    "refusals",
    "servings",
]

ARTIFACT_PATH = "/models/artifact"
BUNDLE_PATH = "/models/bundle.json"  # the version's signing bundle, fetched beside the artifact
TRUST_PATH = "/models/trust.json"  # the trusted public keys, resolved by the init container
PVC_MOUNT = "/mnt/modelcat-artifacts"
TOKEN_KEY = "token"  # the key of artifact_source.registry_secret holding the token
IN_FLIGHT_METRIC = "modelcat_replica_inferences_in_flight"
CPU_UTILIZATION = 80
MODULES = ("deployment_v1", "service_v1", "horizontal_pod_autoscaler_v2", "pod_disruption_budget_v1")


@dataclass(frozen=True)
class Serving:
    """One routed version in one namespace: everything its objects are built from."""

    endpoint: Endpoint
    rollout: EffectiveRollout
    settings: KubernetesSettings
    release: Mapping[str, Any] = field(default_factory=dict, hash=False)  # bodies.signature_fields

    @cached_property
    def name(self) -> str:
        e = self.endpoint
        return object_name(e.application, e.model, e.version)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    @cached_property
    def labels(self) -> dict[str, str]:
        return endpoint_labels(self.endpoint, self.name)

    @property
    def selector(self) -> dict[str, str]:
        return {"modelcat/endpoint": self.name}

    @property
    def autoscaled(self) -> bool:
        s = self.endpoint.serving
        return s.max_replicas > s.min_replicas >= 1

    @property
    def replicas(self) -> int:
        s = self.endpoint.serving
        return s.min_replicas if self.autoscaled else s.replicas

    @property
    def service_url(self) -> str:
        return f"http://{self.name}.{self.namespace}.svc.cluster.local"

    @property
    def grpc_address(self) -> str:
        """Where the Service takes OIP gRPC calls, ``host:port`` (a routing table's ``grpc_replicas``)."""
        return f"{self.name}.{self.namespace}.svc.cluster.local:{GRPC_PORT}"

    @cached_property
    def source(self) -> tuple[str, str]:
        """How the init container fetches (``oci``, ``http``, ``pvc``) and what: the URI, URL or mounted path."""
        return self.fetched(self.endpoint.artifact)

    def fetched(self, uri: str) -> tuple[str, str]:
        """How the init container fetches ``uri`` (the artifact's or its bundle's: both lie in a store)."""
        src = self.settings.artifact_source
        if uri.startswith("oci://"):
            return "oci", uri
        refusal = artifact_refusal(self.endpoint, uri)
        if refusal is not None:
            raise refusal.error()
        path = posixpath.normpath(uri)
        if src.kind == "http":
            return "http", f"{(src.base_url or '').rstrip('/')}/{path}"
        if src.kind == "pvc":
            return "pvc", f"{PVC_MOUNT}/{path}"
        e = self.endpoint  # kind oci pulls oci:// URIs only (validate says so too)
        raise UsageError(
            f"environment {e.environment}: artifact_source kind oci cannot fetch {e.model} {e.version} at {uri}"
        )

    @property
    def token_secret(self) -> str | None:
        """The Secret the fetch reads its bearer token from: http only (a claim is mounted, and OCI
        pulls are anonymous: ``modelcat fetch`` has no registry credentials yet)."""
        return self.settings.artifact_source.registry_secret if self.source[0] == "http" else None


def artifact_refusal(endpoint: Endpoint, uri: str | None = None) -> Refusal | None:
    """Why a cluster cannot fetch ``endpoint``'s artifact (or the file at ``uri``, its bundle), if it
    cannot: the one definition ``validate`` reports at the artifact's URI and ``Serving.source`` raises."""
    uri = endpoint.artifact if uri is None else uri
    if uri.startswith("oci://") or not ("://" in uri or posixpath.normpath(uri).startswith(("/", ".."))):
        return None
    return Refusal(
        "kubernetes.artifact-unreachable",
        endpoint.application,
        endpoint.model,
        ("artifact", "uri"),
        f"{endpoint.model} {endpoint.version} is at {uri}, a file on this machine, which a cluster cannot fetch",
        "give it a path relative to the catalog (served from artifact_source) or an oci:// URI",
        version=endpoint.version,
    )


def refusals(env: Environment) -> list[Refusal]:
    found = (artifact_refusal(e) for e in env.endpoints if e.serving.replicas > 0)
    role = env.kubernetes.vault_role if env.kubernetes is not None else None
    return [refusal for refusal in found if refusal is not None] + vault_agent_refusals(env, "kubernetes", role)


def servings(context: StackContext) -> list[Serving]:
    env = context.environment
    settings = env.kubernetes
    if settings is None:
        raise UsageError(f"environment {env.name!r} has no kubernetes: block")
    for refusal in vault_agent_refusals(env, "kubernetes", settings.vault_role):
        raise refusal.error()
    return [
        Serving(
            route.endpoint,
            binding.rollout,
            settings,
            signature_fields(route.endpoint.bundle, env.trust, context.public_keys),
        )
        for app in env.applications
        for binding in app.bindings
        for route in binding.routes
        if route.endpoint.serving.replicas > 0
    ]


def _fetch_container(k: Any, s: Serving) -> Any:
    prefix = f"{SPEC}InitContainer"
    kind, source = s.source
    e = s.endpoint
    env = None
    if s.token_secret:
        ref = getattr(k, f"{prefix}EnvValueFromSecretKeyRef")(name=s.token_secret, key=TOKEN_KEY)
        env = [
            getattr(k, f"{prefix}Env")(
                name=TOKEN_ENV, value_from=getattr(k, f"{prefix}EnvValueFrom")(secret_key_ref=ref)
            )
        ]
    mounts = [getattr(k, f"{prefix}VolumeMount")(name="models", mount_path=posixpath.dirname(ARTIFACT_PATH))]
    if kind == "pvc":
        mounts.append(getattr(k, f"{prefix}VolumeMount")(name="artifacts", mount_path=PVC_MOUNT, read_only=True))
    args = ["fetch", source, "--digest", e.digest, "--size", str(e.size_bytes), "--out", ARTIFACT_PATH]
    return getattr(k, prefix)(
        name="fetch-artifact",
        image=s.settings.image,
        command=["modelcat"],
        args=args + _release_fetch_args(s),
        env=env,
        volume_mount=mounts,
        security_context=container_security(k, prefix),
    )


def _release_fetch_args(s: Serving) -> list[str]:
    """The init container's release check: the bundle fetched by digest, the trusted keys as JSON."""
    release = s.release
    if not release:
        return []
    args = []
    if release.get("bundle"):
        bundle = s.fetched(release["bundle"])[1]
        args += ["--bundle", bundle, "--bundle-digest", release["bundle_digest"], "--bundle-out", BUNDLE_PATH]
    keys = json.dumps([key.body() for key in release["trusted_key"]], sort_keys=True, separators=(",", ":"))
    args += ["--trusted-keys", keys, "--trust-out", TRUST_PATH]
    return args + (["--require-signatures"] if release.get("require_signatures") else [])


def _release_replica_args(s: Serving) -> list[str]:
    """The replica's release check on what the init container fetched and resolved."""
    release = s.release
    if not release:
        return []
    bundle = ["--bundle", BUNDLE_PATH, "--bundle-digest", release["bundle_digest"]] if release.get("bundle") else []
    return ["--trust", TRUST_PATH, *bundle]


def _resources(k: Any, cls: str, cpu: str | None, memory: str | None) -> Any:
    if cpu is None and memory is None:
        return None
    requests = {key: value for key, value in (("cpu", cpu), ("memory", memory)) if value is not None}
    return getattr(k, cls)(requests=requests, limits={"memory": memory} if memory else None)


def _volumes(k: Any, s: Serving) -> list[Any]:
    volume = k.DeploymentV1SpecTemplateSpecVolume
    empty = k.DeploymentV1SpecTemplateSpecVolumeEmptyDir
    volumes = [volume(name="models", empty_dir=empty()), volume(name="tmp", empty_dir=empty())]
    if s.source[0] == "pvc":
        claim = k.DeploymentV1SpecTemplateSpecVolumePersistentVolumeClaim(
            claim_name=s.settings.artifact_source.pvc, read_only=True
        )
        volumes.append(volume(name="artifacts", persistent_volume_claim=claim))
    return volumes


def max_surge(rollout: EffectiveRollout) -> str:
    return f"{rollout.step_percent if rollout.strategy != 'all_at_once' else 100}%"


def deployment(k: Any, s: Serving) -> Any:
    e = s.endpoint
    args = ["replica", "--model", e.model, "--version", e.version, "--artifact", ARTIFACT_PATH, "--digest", e.digest]
    replica = container(
        k,
        "replica",
        s.settings.image,
        [
            *args,
            *_release_replica_args(s),
            *("--host", "0.0.0.0", "--port", str(CONTAINER_PORT), "--grpc-port", str(GRPC_PORT)),
        ],
        [("models", posixpath.dirname(ARTIFACT_PATH), True), ("tmp", "/tmp", False)],
        grpc=True,
        resources=_resources(k, f"{SPEC}ContainerResources", e.serving.cpu, e.serving.memory),
        env=[k.DeploymentV1SpecTemplateSpecContainerEnv(name=SECRETS_DIR_ENV, value=SECRETS_MOUNT)]
        if e.secrets
        else None,
    )
    annotations = endpoint_annotations(e)
    pod_annotations = {
        **annotations,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(CONTAINER_PORT),
        "prometheus.io/path": "/metrics",
        **vault_agent_annotations(e.secrets, s.settings.vault_role),
    }
    strategy = k.DeploymentV1SpecStrategy(
        type="RollingUpdate",
        rolling_update=k.DeploymentV1SpecStrategyRollingUpdate(max_surge=max_surge(s.rollout), max_unavailable="0"),
    )
    return k.DeploymentV1Config(
        metadata=metadata(
            k,
            "DeploymentV1Metadata",
            s.name,
            s.namespace,
            s.labels,
            annotations={**annotations, "modelcat/rollout": rollout_annotation(s.rollout)},
        ),
        spec=k.DeploymentV1Spec(
            replicas=str(s.replicas),
            selector=k.DeploymentV1SpecSelector(match_labels=s.selector),
            strategy=strategy,
            template=k.DeploymentV1SpecTemplate(
                metadata=k.DeploymentV1SpecTemplateMetadata(labels=s.labels, annotations=pod_annotations),
                spec=k.DeploymentV1SpecTemplateSpec(
                    image_pull_secrets=pull_secrets(k, s.settings),
                    security_context=pod_security(k),
                    init_container=[_fetch_container(k, s)],
                    container=[replica],
                    volume=_volumes(k, s),
                ),
            ),
        ),
    )


def deployment_variant(s: Serving) -> tuple[object, ...]:
    serving = s.endpoint.serving
    return (
        s.source[0],
        bool(s.token_secret),
        bool(s.settings.image_pull_secret),
        serving.cpu is None,
        serving.memory is None,
        bool(s.endpoint.secrets),
        bool(s.release),
    )


def service(k: Any, s: Serving) -> Any:
    return service_body(k, s.name, s.namespace, s.labels, s.selector, grpc=True)


def autoscaler(k: Any, s: Serving) -> Any:
    serving = s.endpoint.serving
    metrics = [
        k.HorizontalPodAutoscalerV2SpecMetric(
            type="Pods",
            pods=k.HorizontalPodAutoscalerV2SpecMetricPods(
                metric=k.HorizontalPodAutoscalerV2SpecMetricPodsMetric(name=IN_FLIGHT_METRIC),
                target=k.HorizontalPodAutoscalerV2SpecMetricPodsTarget(
                    type="AverageValue", average_value=str(serving.target_concurrency)
                ),
            ),
        )
    ]
    if serving.cpu is not None:
        metrics.append(
            k.HorizontalPodAutoscalerV2SpecMetric(
                type="Resource",
                resource=k.HorizontalPodAutoscalerV2SpecMetricResource(
                    name="cpu",
                    target=k.HorizontalPodAutoscalerV2SpecMetricResourceTarget(
                        type="Utilization", average_utilization=CPU_UTILIZATION
                    ),
                ),
            )
        )
    return k.HorizontalPodAutoscalerV2Config(
        metadata=metadata(k, "HorizontalPodAutoscalerV2Metadata", s.name, s.namespace, s.labels),
        spec=k.HorizontalPodAutoscalerV2Spec(
            min_replicas=serving.min_replicas,
            max_replicas=serving.max_replicas,
            scale_target_ref=k.HorizontalPodAutoscalerV2SpecScaleTargetRef(
                api_version="apps/v1", kind="Deployment", name=s.name
            ),
            metric=metrics,
        ),
    )


def disruption_budget(k: Any, s: Serving) -> Any:
    return budget_body(k, s.name, s.namespace, s.labels, s.selector)


def endpoint_kinds(
    modules: dict[str, Any],
) -> list[tuple[ResourceKind[Serving], Callable[[Serving], bool]]]:
    """Each resource type of an endpoint with the test of which endpoints get one."""
    m = modules
    return [
        (ResourceKind(DEPLOYMENT, (m["deployment_v1"],), deployment, deployment_variant), lambda s: True),
        (ResourceKind("kubernetes_service_v1", (m["service_v1"],), service), lambda s: True),
        (
            ResourceKind(
                "kubernetes_horizontal_pod_autoscaler_v2",
                (m["horizontal_pod_autoscaler_v2"],),
                autoscaler,
                lambda s: s.endpoint.serving.cpu is None,
            ),
            lambda s: s.autoscaled,
        ),
        (
            ResourceKind("kubernetes_pod_disruption_budget_v1", (m["pod_disruption_budget_v1"],), disruption_budget),
            lambda s: s.endpoint.serving.min_replicas >= 2,
        ),
    ]
