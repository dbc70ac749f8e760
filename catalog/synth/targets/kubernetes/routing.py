"""The ``kubernetes`` target, per application: a Gateway API HTTPRoute (a GRPCRoute too, where the
Gateway has a gRPC listener) and, when needed, a router.

The HTTPRoute (``gateway.networking.k8s.io/v1``, a ``kubernetes_manifest``) attaches to the
environment's Gateway (``parentRefs``) for its ``hostnames``. It sends traffic either

- **straight to the version Services**, weighted as the catalog says: one rule per binding
  matching ``/v2/models/<model>`` with one ``backendRef`` per routed version (weight = the
  catalog's percent), plus one rule per version for ``/v2/models/<model>/versions/<version>``
  (pinned requests), when every rule fits (an HTTPRoute holds 16 rules); a binding's shadow
  step in force (``mirror:``) is a ``RequestMirror`` filter of its rule: a copy of ``percent`` %
  of its requests to the mirrored version's Service, whose answers the Gateway discards; or
- **to the application's router** (``modelcat router``: a Deployment of 2 replicas, a Service,
  a PodDisruptionBudget), whose ``modelcat/routing-v1`` table lives in a ConfigMap mounted into
  it and names each version's Service (``http://<service>.<namespace>.svc.cluster.local``). The
  router serves *all* the application's models (and runs their shadow steps: the table's
  ``mirror``, no ``RequestMirror`` filter then), and is used when any binding has a sticky key
  (a Gateway cannot hash a header into the catalog's buckets), or when the routes do not fit one
  HTTPRoute (more than 16 bindings, or more than 16 versions in a binding). A weight change
  rewrites the ConfigMap; the router notices the new file and swaps the table without a restart.

The GRPCRoute (when the settings' ``gateway.grpc_section_name`` names the Gateway's gRPC listener)
has the HTTPRoute's rules for OIP gRPC (``inference.GRPCInferenceService``) to the Services' ``grpc``
port: a Gateway never reads the protobuf message, so a rule matches the model in the call's metadata
(``x-model-name``) and a pinned version in ``x-model-version``; for an application behind its
router, every model of the application goes to the router's ``grpc`` port (``--grpc-port``), which
reads model, version and sticky key itself and sends to the versions' gRPC addresses (the table's
``grpc_replicas``). A call without them matches no rule; one whose message names another
version than its metadata reaches a replica that answers NOT_FOUND (never another version's answer).
A listener accepts only one of an HTTPRoute and a GRPCRoute for the same hostnames, so the gRPC
listener must be another than ``section_name`` (refused otherwise: ``grpc_listener_refusals``).

Terraform ordering: the ConfigMap and the HTTPRoute depend on the Deployments and Services they
name, so a new version is rolled out (``wait_for_rollout``) before any traffic is sent to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from catalog.domain.bodies import router_models
from catalog.domain.deployment import ApplicationPlan, BindingPlan, Endpoint, Environment, resource_id
from catalog.domain.models import KubernetesSettings
from catalog.serving.oip_grpc import SERVICE as GRPC_SERVICE  # OIP v2's gRPC service
from catalog.serving.table import table_document
from catalog.synth.base import Refusal, StackContext, mirrored_route
from catalog.synth.kube import object_name, rollout_annotation
from catalog.synth.targets.kubernetes.common import (
    CONTAINER_PORT,
    DEPLOYMENT,
    GRPC_PORT,
    SERVICE_PORT,
    budget_body,
    container,
    metadata,
    pod_security,
    pull_secrets,
    service_body,
)
from catalog.synth.targets.kubernetes.endpoints import Serving
from catalog.synth.typed import ResourceKind, build_bodies

__all__ = [
    "GATEWAY_API",
    "GRPC_SERVICE",
    "MAX_BACKENDS",
    "MAX_RULES",
    "MODEL_HEADER",
    "MODULES",
    "ROUTER_REPLICAS",
    "TABLE_PATH",
    "VERSION_HEADER",
    "AppRouting",
    "application_resources",
    "grpc_listener_refusals",
    "routing_table",
]

MODULES = ("manifest", "config_map_v1", "deployment_v1", "service_v1", "pod_disruption_budget_v1")
GATEWAY_API = "gateway.networking.k8s.io"
MAX_RULES = MAX_BACKENDS = 16  # the HTTPRoute CRD's maxItems (and the GRPCRoute's)
MAX_MATCHES = 64  # a rule's matches, in both
MODEL_HEADER, VERSION_HEADER = "x-model-name", "x-model-version"  # the gRPC metadata a GRPCRoute matches
ROUTER_REPLICAS = 2
TABLE_DIR = "/etc/modelcat/routing"
TABLE_FILE = "table.json"
TABLE_PATH = f"{TABLE_DIR}/{TABLE_FILE}"
MANIFEST, CONFIG_MAP = "kubernetes_manifest", "kubernetes_config_map_v1"
SERVICE, BUDGET = "kubernetes_service_v1", "kubernetes_pod_disruption_budget_v1"


@dataclass(frozen=True)
class AppRouting:
    """One application in one namespace, with the Services of its routed versions."""

    app: ApplicationPlan
    settings: KubernetesSettings
    servings: Mapping[str, Serving]  # endpoint id -> its Serving (versions with replicas)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    @cached_property
    def router_name(self) -> str:
        return object_name(self.app.name, "router")

    @cached_property
    def table_name(self) -> str:
        return object_name(self.app.name, "routing")

    @cached_property
    def uses_router(self) -> bool:
        bindings = self.app.bindings
        too_many = len(bindings) > MAX_RULES or any(len(b.routes) > MAX_BACKENDS for b in bindings)
        return too_many or any(b.sticky_key for b in bindings)

    @property
    def pinned(self) -> bool:
        """Whether a rule per version fits beside the rule per binding."""
        return len(self.app.bindings) + len(self.app.endpoints) <= MAX_RULES

    def labels(self, component: str) -> dict[str, str]:
        labels = {
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "modelcat",
            "app.kubernetes.io/name": "modelcat",
            "modelcat/application": self.app.name,
            "modelcat/environment": self.app.environment,
        }
        if component == "router":
            labels["modelcat/router"] = self.router_name
        return labels

    @property
    def router_selector(self) -> dict[str, str]:
        return {"modelcat/router": self.router_name}

    @property
    def dependencies(self) -> list[str]:
        """The Deployments and Services of the application's versions, as Terraform addresses."""
        ids = [e.id for e in self.app.endpoints if e.id in self.servings]
        return [f"{kind}.{i}" for i in dict.fromkeys(ids) for kind in (DEPLOYMENT, SERVICE)]


def routing_table(r: AppRouting) -> dict[str, Any]:
    """The router's ``modelcat/routing-v1`` table: every binding, versions in the catalog's order."""

    def replicas(endpoint: Endpoint) -> list[str]:
        serving = r.servings.get(endpoint.id)
        return [serving.service_url] if serving else []

    def grpc_replicas(endpoint: Endpoint) -> list[str]:
        serving = r.servings.get(endpoint.id)
        return [serving.grpc_address] if serving else []

    return table_document(r.app.name, [model.body() for model in router_models(r.app, replicas, grpc_replicas)])


def _service_ref(name: str, port: int) -> dict[str, Any]:
    """A Service reference, every field the API server would default written out (no perpetual diff)."""
    return {"group": "", "kind": "Service", "name": name, "port": port}


def _backend(name: str, port: int, weight: int = 1) -> dict[str, Any]:
    return {**_service_ref(name, port), "weight": weight}


def _prefix(path: str) -> list[dict[str, Any]]:
    return [{"path": {"type": "PathPrefix", "value": path}}]


def _path_matches(model: str, version: str | None) -> list[dict[str, Any]]:
    return _prefix(f"/v2/models/{model}" + (f"/versions/{version}" if version else ""))


def _metadata_matches(model: str, version: str | None) -> list[dict[str, Any]]:
    """gRPC names its model in the message, which a Gateway does not read: the call's metadata does."""
    headers = [{"type": "Exact", "name": MODEL_HEADER, "value": model}]
    if version:
        headers.append({"type": "Exact", "name": VERSION_HEADER, "value": version})
    return [{"method": {"type": "Exact", "service": GRPC_SERVICE}, "headers": headers}]


@dataclass(frozen=True)
class _Wire:
    """What an HTTPRoute and a GRPCRoute differ in: how a rule matches a model (and version), and
    which port of the Services it sends to."""

    matches: Callable[[str, str | None], list[dict[str, Any]]]
    port: int
    to_router: Callable[[AppRouting], list[dict[str, Any]]]  # the matches of what goes to the router


def _any_path(r: AppRouting) -> list[dict[str, Any]]:
    return _prefix("/")


def _any_model(r: AppRouting) -> list[dict[str, Any]]:
    """Each of the application's models by its metadata (other applications may share the listener)."""
    return [match for binding in r.app.bindings for match in _metadata_matches(binding.model, None)]


HTTP = _Wire(_path_matches, SERVICE_PORT, _any_path)
GRPC = _Wire(_metadata_matches, GRPC_PORT, _any_model)


def _rules(r: AppRouting, wire: _Wire) -> list[dict[str, Any]]:
    if r.uses_router:
        matches, router = wire.to_router(r), [_backend(r.router_name, wire.port)]
        return [
            {"matches": matches[i : i + MAX_MATCHES], "backendRefs": router}
            for i in range(0, len(matches), MAX_MATCHES)
        ]
    rules, pinned = [], []
    for binding in r.app.bindings:
        backends = []
        for route in binding.routes:
            serving = r.servings.get(route.endpoint.id)
            if serving is None:
                continue  # no replicas: nothing to send to (its weight is 0)
            backends.append(_backend(serving.name, wire.port, route.weight))
            pinned.append(
                {
                    "matches": wire.matches(binding.model, route.version),
                    "backendRefs": [_backend(serving.name, wire.port)],
                }
            )
        rule: dict[str, Any] = {"matches": wire.matches(binding.model, None), "backendRefs": backends}
        mirror = _mirror_filter(r, binding, wire.port)
        if mirror is not None:
            rule["filters"] = [mirror]
        rules.append(rule)
    return rules + pinned if r.pinned else rules


def _mirror_filter(r: AppRouting, binding: BindingPlan, port: int) -> dict[str, Any] | None:
    """The shadow step in force as a ``RequestMirror`` filter of the binding's rule: a copy of
    ``percent`` % of its requests to the mirrored version's Service, whose answers the Gateway
    discards (pinned requests, which name their version, are not mirrored)."""
    route = mirrored_route(binding)
    serving = r.servings.get(route.endpoint.id) if route is not None else None
    if serving is None or binding.mirror is None:
        return None  # no mirror, or no replicas to copy to (the binding's rule sends nothing either)
    mirror = {"backendRef": _service_ref(serving.name, port), "percent": binding.mirror.percent}
    return {"type": "RequestMirror", "requestMirror": mirror}


def _route(k: Any, r: AppRouting, kind: str, section_name: str | None, rules: list[dict[str, Any]]) -> Any:
    gateway = r.settings.gateway
    parent: dict[str, Any] = {
        "group": GATEWAY_API,
        "kind": "Gateway",
        "name": gateway.name,
        "namespace": gateway.namespace or r.namespace,
    }
    if section_name:
        parent["sectionName"] = section_name
    spec: dict[str, Any] = {"parentRefs": [parent], "rules": rules}
    if r.settings.hostnames:
        spec["hostnames"] = list(r.settings.hostnames)
    rollouts = {b.model: b.rollout for b in r.app.bindings}
    manifest = {
        "apiVersion": f"{GATEWAY_API}/v1",
        "kind": kind,
        "metadata": {
            "name": r.app.name,
            "namespace": r.namespace,
            "labels": r.labels("route"),
            "annotations": {"modelcat/rollout": rollout_annotation(rollouts)},
        },
        "spec": spec,
    }
    return k.ManifestConfig(manifest=manifest)


def http_route(k: Any, r: AppRouting) -> Any:
    return _route(k, r, "HTTPRoute", r.settings.gateway.section_name, _rules(r, HTTP))


def grpc_route(k: Any, r: AppRouting) -> Any:
    """The application's GRPCRoute, on the Gateway's gRPC listener: the HTTPRoute's rules with the
    model (and a pinned version) matched in the call's metadata, to the Services' gRPC port."""
    return _route(k, r, "GRPCRoute", r.settings.gateway.grpc_section_name, _rules(r, GRPC))


def grpc_listener_refusals(env: Environment) -> list[Refusal]:
    """A gRPC listener that is the HTTP one: a listener accepts only one of an HTTPRoute and a
    GRPCRoute whose hostnames meet (Gateway API), so one of the two would not be served."""
    gateway = env.kubernetes.gateway if env.kubernetes is not None else None
    if gateway is None or gateway.grpc_section_name is None or gateway.grpc_section_name != gateway.section_name:
        return []
    return [
        Refusal(
            "kubernetes.grpc-listener",
            "",
            "",
            ("kubernetes", "gateway", "grpc_section_name"),
            f"the GRPCRoutes and the HTTPRoutes would attach to the same listener {gateway.section_name!r}, "
            "which accepts only one of an HTTPRoute and a GRPCRoute for the same hostnames",
            "name the Gateway's gRPC listener in grpc_section_name, another than section_name",
            environment=env.name,
        )
    ]


def config_map(k: Any, r: AppRouting) -> Any:
    table = json.dumps(routing_table(r), sort_keys=True) + "\n"  # one line: the C encoder (indent is pure Python)
    return k.ConfigMapV1Config(
        metadata=metadata(k, "ConfigMapV1Metadata", r.table_name, r.namespace, r.labels("routing-table")),
        data={TABLE_FILE: table},
    )


def router_deployment(k: Any, r: AppRouting) -> Any:
    router = container(
        k,
        "router",
        r.settings.image,
        # the assignment lines go to stdout, for the cluster's log pipeline (no volume to keep them in)
        [
            *("router", "--table", TABLE_PATH, "--host", "0.0.0.0", "--port", str(CONTAINER_PORT)),
            *("--grpc-port", str(GRPC_PORT), "--assignments-stdout"),
        ],
        [("routing", TABLE_DIR, True), ("tmp", "/tmp", False)],
        grpc=True,
    )
    volume = k.DeploymentV1SpecTemplateSpecVolume
    labels = r.labels("router")
    return k.DeploymentV1Config(
        metadata=metadata(k, "DeploymentV1Metadata", r.router_name, r.namespace, labels),
        spec=k.DeploymentV1Spec(
            replicas=str(ROUTER_REPLICAS),
            selector=k.DeploymentV1SpecSelector(match_labels=r.router_selector),
            template=k.DeploymentV1SpecTemplate(
                metadata=k.DeploymentV1SpecTemplateMetadata(labels=labels),
                spec=k.DeploymentV1SpecTemplateSpec(
                    image_pull_secrets=pull_secrets(k, r.settings),
                    security_context=pod_security(k),
                    container=[router],
                    volume=[
                        volume(
                            name="routing", config_map=k.DeploymentV1SpecTemplateSpecVolumeConfigMap(name=r.table_name)
                        ),
                        volume(name="tmp", empty_dir=k.DeploymentV1SpecTemplateSpecVolumeEmptyDir()),
                    ],
                ),
            ),
        ),
    )


def router_service(k: Any, r: AppRouting) -> Any:
    return service_body(k, r.router_name, r.namespace, r.labels("router"), r.router_selector, grpc=True)


def router_budget(k: Any, r: AppRouting) -> Any:
    return budget_body(k, r.router_name, r.namespace, r.labels("router"), r.router_selector)


def _route_variant(r: AppRouting) -> tuple[object, ...]:
    return (r.uses_router, r.pinned, bool(r.settings.hostnames), bool(r.settings.gateway.section_name))


def application_resources(
    context: StackContext, servings: list[Serving], modules: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``{resource type: {id: body}}`` of every application's HTTPRoute, GRPCRoute and router."""
    settings = context.environment.kubernetes
    assert settings is not None  # checked by servings()
    by_id = {s.endpoint.id: s for s in servings}
    apps = [AppRouting(app, settings, by_id) for app in context.environment.applications if app.bindings]
    routed = [(a.app.id, a) for a in apps if a.uses_router]
    for refusal in grpc_listener_refusals(context.environment):
        raise refusal.error()
    grpc_id = {a.app.id: resource_id(a.app.name, "grpc") for a in apps if a.settings.gateway.grpc_section_name}
    m = modules
    deployment_v1, service_v1, budget_v1 = m["deployment_v1"], m["service_v1"], m["pod_disruption_budget_v1"]
    router_id = {a.app.id: resource_id(a.app.name, "router") for _, a in routed}
    resources = {
        MANIFEST: build_bodies(
            ResourceKind(MANIFEST, (m["manifest"],), http_route, _route_variant), ((a.app.id, a) for a in apps)
        )
        | build_bodies(
            ResourceKind(MANIFEST, (m["manifest"],), grpc_route, _route_variant),
            ((grpc_id[a.app.id], a) for a in apps if a.app.id in grpc_id),
        ),
        CONFIG_MAP: build_bodies(ResourceKind(CONFIG_MAP, (m["config_map_v1"],), config_map), routed),
        DEPLOYMENT: build_bodies(
            ResourceKind(DEPLOYMENT, (deployment_v1,), router_deployment, lambda a: bool(a.settings.image_pull_secret)),
            ((router_id[i], a) for i, a in routed),
        ),
        SERVICE: build_bodies(
            ResourceKind(SERVICE, (service_v1,), router_service), ((router_id[i], a) for i, a in routed)
        ),
        BUDGET: build_bodies(ResourceKind(BUDGET, (budget_v1,), router_budget), ((router_id[i], a) for i, a in routed)),
    }
    for app_id, a in routed:
        resources[CONFIG_MAP][app_id]["depends_on"] = a.dependencies
        resources[DEPLOYMENT][router_id[app_id]]["depends_on"] = [f"{CONFIG_MAP}.{app_id}"]
    for a in apps:
        needs = (
            [f"{DEPLOYMENT}.{router_id[a.app.id]}", f"{SERVICE}.{router_id[a.app.id]}"]
            if a.uses_router
            else a.dependencies
        )
        if needs:
            for route_id in (a.app.id, grpc_id.get(a.app.id)):
                if route_id is not None:
                    resources[MANIFEST][route_id]["depends_on"] = needs
    return resources
