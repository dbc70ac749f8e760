"""The ``local`` target: replicas and routers as processes on this machine, via the provider
``modelcat`` (see ``catalog.provider``).

Per endpoint a ``modelcat_endpoint`` (its replicas; replaced create-before-destroy when its
version or bytes change, so the new replicas are ready and the route switched before the old
ones stop); per application a ``modelcat_route`` (its router, fed the endpoints' replica URLs).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from catalog.domain.deployment import ApplicationPlan, Endpoint, Environment
from catalog.synth.base import Bodies, Refusal, StackContext, run_dir
from catalog.synth.emit import add_outputs, add_resources, reference

__all__ = ["PROVIDER_SOURCE", "LocalTarget", "synthesize_bodies"]

PROVIDER_SOURCE = "modelcat/modelcat"
ENDPOINT, ROUTE = "modelcat_endpoint", "modelcat_route"
HOST = "127.0.0.1"


def endpoint_body(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "model": endpoint.model,
        "version": endpoint.version,
        "digest": endpoint.digest,
        "artifact": endpoint.artifact,
        "replicas": endpoint.serving.replicas,
        "host": HOST,
        "labels": endpoint.labels(),
        "lifecycle": {"create_before_destroy": True},
    }


def route_body(app: ApplicationPlan) -> dict[str, Any]:
    routes = []
    for binding in app.bindings:
        for route in binding.routes:
            entry: dict[str, Any] = {
                "model": binding.model,
                "version": route.version,
                "weight": route.weight,
                "digest": route.endpoint.digest,
                "replicas": reference(ENDPOINT, route.endpoint.id, "urls") if route.endpoint.serving.replicas else [],
            }
            if binding.sticky_key:
                entry["sticky_key"] = binding.sticky_key
            routes.append(entry)
    return {"application": app.name, "host": HOST, "port": 0, "route": routes}


def synthesize_bodies(context: StackContext) -> dict[str, dict[str, Any]]:
    """``{resource type: {id: body}}`` of the environment: the stack's resources, without the stack.

    An endpoint with no replicas runs nothing and gets no resource; an application with no
    enabled binding gets no router. Types without a resource are left out.
    """
    env = context.environment
    endpoints = {e.id: endpoint_body(e) for e in env.endpoints if e.serving.replicas > 0}
    routes = {app.id: route_body(app) for app in env.applications if app.bindings}
    return {kind: bodies for kind, bodies in ((ENDPOINT, endpoints), (ROUTE, routes)) if bodies}


class LocalTarget:
    """Processes on this machine, managed by the embedded Terraform through ``modelcat``."""

    name = "local"

    def refusals(self, environment: Environment) -> list[Refusal]:
        """Whatever validate accepts runs here."""
        return []

    def bodies(self, context: StackContext) -> Bodies:
        return synthesize_bodies(context)

    def build(self, stack: Any, context: StackContext) -> None:
        from cdktn import TerraformProvider

        provider = TerraformProvider(
            stack, "modelcat", terraform_resource_type="modelcat", terraform_provider_source=PROVIDER_SOURCE
        )
        provider.add_override("catalog", context.catalog)
        provider.add_override("run_dir", run_dir(PurePosixPath(context.state_root), context.name).as_posix())
        resources = synthesize_bodies(context)
        routes = resources.get(ROUTE, {})
        for kind in (ENDPOINT, ROUTE):
            add_resources(stack, kind, resources.get(kind, {}))
        add_outputs(
            stack,
            {
                f"{app_id}_url": {
                    "value": reference(ROUTE, app_id, "url"),
                    "description": f"router of {body['application']}",
                }
                for app_id, body in routes.items()
            },
        )
