"""The ``kubernetes`` target: plain Kubernetes objects through the ``hashicorp/kubernetes`` provider.

Per routed version, a Deployment, a Service, maybe an HPA and a PodDisruptionBudget
(``endpoints``); per application, an HTTPRoute, a GRPCRoute where the Gateway has a gRPC listener,
and possibly a router (``routing``); per
namespace a PodMonitor that scrapes both (``monitoring``); what they build on (ports, the ``modelcat`` container, pod security, Service and budget bodies) is in
``common``.

Bodies are built once per resource type by ``catalog.synth.typed`` (typed structs checked for
the first item of each variant) and emitted with one ``add_override`` per resource type.
"""

from __future__ import annotations

from typing import Any

from catalog.domain.deployment import Environment
from catalog.errors import UsageError
from catalog.synth.base import Bodies, Refusal, StackContext
from catalog.synth.emit import add_resources
from catalog.synth.kube import BINDINGS_PACKAGE, add_provider
from catalog.synth.targets.kubernetes import endpoints, monitoring, routing
from catalog.synth.targets.kubernetes.common import DEPLOYMENT
from catalog.synth.typed import build_bodies, import_bindings

__all__ = ["KubernetesTarget", "add_all", "load_modules", "synthesize_bodies"]


def _merge(into: dict[str, dict[str, Any]], kind: str, bodies: dict[str, Any]) -> None:
    target = into.setdefault(kind, {})
    for key, body in bodies.items():
        if key in target:
            raise ValueError(f"two {kind} resources named {key}")  # resource ids are unique by construction
        target[key] = body


def synthesize_bodies(context: StackContext, modules: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``{resource type: {id: body}}`` of the environment: the stack's resources, without the stack."""
    if modules is None:
        modules = load_modules()
    items = endpoints.servings(context)
    resources: dict[str, dict[str, Any]] = {}
    for kind, wanted in endpoints.endpoint_kinds(modules):
        _merge(resources, kind.resource_type, build_bodies(kind, ((s.endpoint.id, s) for s in items if wanted(s))))
    for s in items:  # an apply never fights the HPA over the replica count
        if s.autoscaled:
            resources[DEPLOYMENT][s.endpoint.id]["lifecycle"] = {"ignore_changes": ["spec[0].replicas"]}
    for resource_type, bodies in routing.application_resources(context, items, modules).items():
        _merge(resources, resource_type, bodies)
    for resource_type, bodies in monitoring.monitoring_resources(context, bool(items), modules).items():
        _merge(resources, resource_type, bodies)
    return resources


def load_modules() -> dict[str, Any]:
    """The provider's struct modules this target and its routing use (jsii assembly not loaded)."""
    names = tuple(dict.fromkeys((*endpoints.MODULES, *routing.MODULES)))
    try:
        loaded = import_bindings(BINDINGS_PACKAGE, *names)
    except ModuleNotFoundError as e:
        raise UsageError(
            "the kubernetes target needs cdktn-provider-kubernetes: pip install 'modelcat[targets]'"
        ) from e
    return dict(zip(names, loaded, strict=True))


def add_all(stack: Any, resources: dict[str, dict[str, Any]]) -> None:
    for kind in sorted(resources):
        add_resources(stack, kind, resources[kind])


class KubernetesTarget:
    """Deployments, Services, HPAs, PDBs, HTTPRoutes (and routers) and a PodMonitor in the environment's namespace."""

    name = "kubernetes"

    def refusals(self, environment: Environment) -> list[Refusal]:
        return endpoints.refusals(environment) + routing.grpc_listener_refusals(environment)

    def bodies(self, context: StackContext) -> Bodies:
        return synthesize_bodies(context)

    def build(self, stack: Any, context: StackContext) -> None:
        resources = synthesize_bodies(context)
        add_provider(stack)
        add_all(stack, resources)
