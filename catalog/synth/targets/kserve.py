"""The ``kserve`` target: one KServe InferenceService per binding, through ``hashicorp/kubernetes``.

Per binding (application x model) with replicas, in the environment's namespace, one
``serving.kserve.io/v1beta1`` InferenceService as a ``kubernetes_manifest`` (typed through the
provider's ``ManifestConfig`` struct, as the kubernetes target's HTTPRoute; the body itself is
checked by the tests against the real CRD):

- the predictor serves ``model.modelFormat.name: onnx`` (Open Inference Protocol, ``v2``) from a
  ``storageUri`` pinned by digest: an ``oci://host/repo@sha256:...`` artifact URI as it is (the
  catalog refuses an unpinned one), any other artifact at ``storage_uri_prefix`` + its
  content-addressed path ``sha256/<first two hex>/<hex>``;
- ``minReplicas``/``maxReplicas`` from the serving block when it autoscales
  (``max_replicas > min_replicas >= 1``), else both ``replicas``; ``scaleMetric: concurrency``
  with ``scaleTarget`` = ``target_concurrency``; cpu/memory requests (memory also as the limit);
  ``serviceAccountName`` from the settings (the storage credentials, never inlined);
- labels and annotations (model, version, digest, artifact) as every Kubernetes object of
  modelcat's (``catalog.synth.kube``), on the object and on the predictor's pods; the rollout
  block as ``modelcat/rollout``; Terraform waits for the ``Ready`` condition;
- the environment's secrets: the Vault Agent Injector's annotations on the predictor (its pods),
  with the settings' ``vault_role`` (refused without one), and ``MODELCAT_SECRETS_DIR`` in the
  model container's environment;
- the protocol: KServe's serverless mode (Knative) routes exactly one port of a predictor's
  container (Knative refuses a second), so an InferenceService serves REST *or* gRPC. With the
  settings' ``protocol_version: v2`` (the default) it is REST on the runtime's HTTP port; with
  ``grpc-v2`` the model declares ``protocolVersion: grpc-v2`` and ``ports: [{name: h2c,
  containerPort: grpc_port}]`` (the name Knative serves as HTTP/2, i.e. gRPC; 9000 is
  kserve-tritonserver's gRPC port, the runtime KServe picks for ONNX over v2 and grpc-v2).

Traffic uses KServe's canary model: an InferenceService's spec holds *one* predictor, and
``canaryTrafficPercent`` sends that share to the revision of the current spec while the last
revision that was rolled out at 100 % keeps the rest. So:

- one version with traffic: a plain InferenceService of it (every rollout to 100 %);
- two versions: the spec holds the later-declared route (the canary) with
  ``canaryTrafficPercent`` = its weight; the first route (the stable version) is what the
  previous rolled-out revision must be serving, recorded in the annotations
  ``modelcat/stable-version``, ``modelcat/stable-digest`` and ``modelcat/stable-storage-uri``
  (and ``modelcat/canary-traffic-percent``) so that a reviewer or a check can compare it with
  the InferenceService's status; KServe cannot be told which revision is stable, so the stable
  version must have been rolled out first (the binding at one version, applied, then the canary
  route added);
- routes of weight 0 get no revision (KServe has nothing to keep warm without traffic): they are
  listed in ``modelcat/unrouted-versions``; a canary of weight 100 is a plain InferenceService of it;
- a ``sticky_key`` cannot be honoured (KServe splits per request): it is recorded in
  ``modelcat/sticky-key`` only;
- more than two versions with traffic: refused (``binding_refusals``: ``validate`` reports it at the
  binding's routes for environments deployed to kserve, synth raises ``UsageError`` naming
  application and model).
  KServe's canary model has one previous revision; the CRD's ``spec.canary`` list
  (``[{predictor, trafficPercent}]``) documents no semantics in the schema and is not relied on.
- a shadow step, in force (``mirror:``) or declared (``rollout.shadow``): refused the same way
  (``mirror_refusals``, at that field): an InferenceService splits requests, it never copies them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from catalog.domain.bodies import SECRETS_DIR_ENV
from catalog.domain.deployment import BindingPlan, Endpoint, Environment, RoutePlan, resource_id
from catalog.domain.models import KServeSettings
from catalog.errors import UsageError
from catalog.synth import kube
from catalog.synth.base import Bodies, Refusal, StackContext, served_bindings, served_refusals
from catalog.synth.emit import add_resources
from catalog.synth.kube import (
    BINDINGS_PACKAGE,
    SECRETS_MOUNT,
    add_provider,
    endpoint_annotations,
    endpoint_labels,
    object_name,
    rollout_annotation,
)
from catalog.synth.typed import ResourceKind, build_bodies, import_bindings

__all__ = [
    "API_VERSION",
    "MANIFEST",
    "InferenceService",
    "KServeTarget",
    "binding_refusals",
    "inference_service",
    "inference_services",
    "mirror_refusals",
    "refusals",
    "storage_uri",
    "synthesize_bodies",
]

API_VERSION = "serving.kserve.io/v1beta1"
MANIFEST = "kubernetes_manifest"
MODEL_FORMAT = "onnx"
GRPC_PROTOCOL = "grpc-v2"
H2C_PORT = "h2c"  # the port name Knative serves as HTTP/2 in clear text, i.e. gRPC
MODULES = ("manifest",)


def storage_uri(endpoint: Endpoint, settings: KServeSettings) -> str:
    """Where KServe's storage initializer fetches ``endpoint``'s artifact, pinned by digest."""
    if endpoint.artifact.startswith("oci://"):
        return endpoint.artifact  # validate refuses an oci:// URI that is not by digest
    prefix = settings.storage_uri_prefix
    if prefix is None:
        e = endpoint
        raise UsageError(
            f"environment {e.environment}: {e.model} {e.version} is at {e.artifact}, not an oci:// URI; "
            "give the kserve: block a storage_uri_prefix where the artifacts are published"
        )
    hexdigest = endpoint.digest.removeprefix("sha256:")
    return f"{prefix.rstrip('/')}/sha256/{hexdigest[:2]}/{hexdigest}"


@dataclass(frozen=True)
class InferenceService:
    """One binding's InferenceService: the version its spec holds and, for a canary, the stable one."""

    binding: BindingPlan
    served: RoutePlan  # the spec's predictor: the only version, or the canary
    stable: RoutePlan | None  # the previous rolled-out revision a canary splits with
    unrouted: tuple[str, ...]  # versions of weight 0
    settings: KServeSettings

    @property
    def endpoint(self) -> Endpoint:
        return self.served.endpoint

    @cached_property
    def name(self) -> str:
        return object_name(self.endpoint.application, self.binding.model)

    @property
    def id(self) -> str:
        return resource_id(self.endpoint.application, self.binding.model)

    @property
    def autoscaled(self) -> bool:
        s = self.endpoint.serving
        return s.max_replicas > s.min_replicas >= 1

    @property
    def replica_bounds(self) -> tuple[int, int]:
        s = self.endpoint.serving
        return (s.min_replicas, s.max_replicas) if self.autoscaled else (s.replicas, s.replicas)

    @cached_property
    def labels(self) -> dict[str, str]:
        return endpoint_labels(self.endpoint, self.name, component="inferenceservice")

    @cached_property
    def annotations(self) -> dict[str, str]:
        out = {**endpoint_annotations(self.endpoint), "modelcat/rollout": rollout_annotation(self.binding.rollout)}
        if self.stable is not None:
            stable = self.stable.endpoint
            out["modelcat/canary-traffic-percent"] = str(self.served.weight)
            out["modelcat/stable-version"] = stable.version
            out["modelcat/stable-digest"] = stable.digest
            out["modelcat/stable-storage-uri"] = storage_uri(stable, self.settings)
        if self.binding.sticky_key:  # KServe splits per request: recorded, not enforced
            out["modelcat/sticky-key"] = self.binding.sticky_key
        if self.unrouted:
            out["modelcat/unrouted-versions"] = json.dumps(list(self.unrouted))
        return out


def binding_refusals(application: str, binding: BindingPlan) -> Iterator[Refusal]:
    """What KServe cannot run of one served binding: the one definition of its limit, which
    ``validate`` reports with its line and ``inference_services`` raises."""
    routed = [r for r in binding.routes if r.weight > 0]
    if len(routed) > 2:
        versions = ", ".join(f"{r.version} ({r.weight} %)" for r in routed)
        yield Refusal(
            "kserve.routed-versions",
            application,
            binding.model,
            ("routes",),
            f"KServe splits traffic between two versions at most (a canary and the revision rolled out "
            f"before it), and the catalog routes {len(routed)}: {versions}",
            "give at most two routes a weight, or deploy this environment to kubernetes",
        )


def mirror_refusals(application: str, binding: BindingPlan) -> Iterator[Refusal]:
    """A shadow step, which KServe cannot run (an InferenceService splits requests between two
    revisions and copies none to a third): in force (``mirror:``) or declared (``rollout.shadow``)."""

    def refusal(code: str, field: tuple[str, ...], what: str) -> Refusal:
        return Refusal(
            f"kserve.{code}",
            application,
            binding.model,
            field,
            f"KServe cannot mirror requests: {what} has no InferenceService field (KServe splits traffic, never copies it)",
            "run the shadow step where the environment deploys to kubernetes or sagemaker, "
            "or roll out without one (no mirror: on the binding, no shadow: in its rollout)",
        )

    mirror, shadow = binding.mirror, binding.rollout.shadow
    if mirror is not None:
        yield refusal("mirror", ("mirror",), f"the copy of {mirror.percent} % of requests to {mirror.version}")
    if shadow is not None:
        yield refusal("shadow", ("rollout", "shadow"), f"the rollout's shadow step ({shadow.percent} % mirrored)")


def _plan(binding: BindingPlan, settings: KServeSettings) -> InferenceService:
    routed = [r for r in binding.routes if r.weight > 0]
    unrouted = tuple(r.version for r in binding.routes if r.weight == 0)
    if len(routed) == 2:  # neither weighs 0, so neither 100
        return InferenceService(binding, routed[1], routed[0], unrouted, settings)
    return InferenceService(binding, routed[-1], None, unrouted, settings)


def refusals(env: Environment) -> list[Refusal]:
    role = env.kserve.vault_role if env.kserve is not None else None
    return served_refusals(env, binding_refusals, mirror_refusals) + kube.vault_agent_refusals(env, "kserve", role)


def inference_services(context: StackContext) -> list[InferenceService]:
    env = context.environment
    settings = env.kserve
    if settings is None:
        raise UsageError(f"environment {env.name!r} has no kserve: block")
    for refusal in refusals(env):
        raise refusal.error()
    return [_plan(binding, settings) for _, binding in served_bindings(env)]


def _resources(serving: Any) -> dict[str, Any] | None:
    if serving.cpu is None and serving.memory is None:
        return None
    requests = {key: value for key, value in (("cpu", serving.cpu), ("memory", serving.memory)) if value is not None}
    out: dict[str, Any] = {"requests": requests}
    if serving.memory is not None:
        out["limits"] = {"memory": serving.memory}
    return out


def inference_service(k: Any, isvc: InferenceService) -> Any:
    e = isvc.endpoint
    minimum, maximum = isvc.replica_bounds
    model: dict[str, Any] = {
        "modelFormat": {"name": MODEL_FORMAT},
        "protocolVersion": isvc.settings.protocol_version,
        "storageUri": storage_uri(e, isvc.settings),
    }
    resources = _resources(e.serving)
    if resources is not None:
        model["resources"] = resources
    if e.secrets:
        model["env"] = [{"name": SECRETS_DIR_ENV, "value": SECRETS_MOUNT}]
    if isvc.settings.protocol_version == GRPC_PROTOCOL:  # the one port Knative routes: the runtime's gRPC
        model["ports"] = [{"name": H2C_PORT, "containerPort": isvc.settings.grpc_port, "protocol": "TCP"}]
    predictor: dict[str, Any] = {
        "model": model,
        "minReplicas": minimum,
        "maxReplicas": maximum,
        "scaleMetric": "concurrency",
        "scaleTarget": e.serving.target_concurrency,
        "labels": isvc.labels,
        "annotations": endpoint_annotations(e) | kube.vault_agent_annotations(e.secrets, isvc.settings.vault_role),
    }
    if isvc.stable is not None:
        predictor["canaryTrafficPercent"] = isvc.served.weight
    if isvc.settings.service_account:
        predictor["serviceAccountName"] = isvc.settings.service_account
    manifest = {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": isvc.name,
            "namespace": isvc.settings.namespace,
            "labels": isvc.labels,
            "annotations": isvc.annotations,
        },
        "spec": {"predictor": predictor},
    }
    ready = k.ManifestWaitCondition(type="Ready", status="True")
    return k.ManifestConfig(manifest=manifest, wait=k.ManifestWait(condition=[ready]))


def synthesize_bodies(context: StackContext, modules: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``{resource type: {id: body}}`` of the environment: the stack's resources, without the stack."""
    if modules is None:
        modules = load_modules()
    items = inference_services(context)
    kind = ResourceKind(MANIFEST, (modules["manifest"],), inference_service)
    bodies = build_bodies(kind, ((i.id, i) for i in items))
    return {MANIFEST: bodies} if bodies else {}


def load_modules() -> dict[str, Any]:
    try:
        loaded = import_bindings(BINDINGS_PACKAGE, *MODULES)
    except ModuleNotFoundError as e:
        raise UsageError("the kserve target needs cdktn-provider-kubernetes: pip install 'modelcat[targets]'") from e
    return dict(zip(MODULES, loaded, strict=True))


class KServeTarget:
    """One InferenceService per binding in the environment's namespace."""

    name = "kserve"

    def refusals(self, environment: Environment) -> list[Refusal]:
        return refusals(environment)

    def bodies(self, context: StackContext) -> Bodies:
        return synthesize_bodies(context)

    def build(self, stack: Any, context: StackContext) -> None:
        resources = synthesize_bodies(context)
        add_provider(stack)
        for kind in sorted(resources):
            add_resources(stack, kind, resources[kind])
