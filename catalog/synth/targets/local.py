"""The ``local`` target: replicas and routers as processes on this machine, via the provider
``modelcat`` (see ``catalog.provider``).

Per endpoint a ``modelcat_endpoint`` (its replicas; replaced create-before-destroy when its
version or bytes change, so the new replicas are ready and the route switched before the old
ones stop); per application a ``modelcat_route`` (its router: per model a ``model`` block, per
version a ``route`` block fed the endpoint's replica URLs and gRPC addresses); per stack that runs anything a
``modelcat_metrics`` (its Prometheus, scraping those routers and replicas). The bodies' shapes
are ``catalog.domain.bodies``, shared with the provider.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from catalog.domain.bodies import (
    DEFAULT_HOST,
    EndpointBody,
    MetricsBody,
    RouterBody,
    router_models,
    secret_bodies,
    signature_fields,
)
from catalog.domain.deployment import ApplicationPlan, Endpoint, Environment
from catalog.layout import run_dir
from catalog.synth.base import Bodies, Refusal, StackContext
from catalog.synth.emit import add_outputs, add_resources, reference

__all__ = ["PROVIDER_SOURCE", "LocalTarget", "synthesize_bodies"]

PROVIDER_SOURCE = "modelcat/modelcat"
ENDPOINT, ROUTE, METRICS = "modelcat_endpoint", "modelcat_route", "modelcat_metrics"
PROMETHEUS = "prometheus"  # the id of the stack's modelcat_metrics


def endpoint_body(endpoint: Endpoint, context: StackContext) -> dict[str, Any]:
    """The endpoint's replicas, with what they verify before they listen (``signature_fields``)."""
    body = EndpointBody(
        name=endpoint.name,
        model=endpoint.model,
        version=endpoint.version,
        digest=endpoint.digest,
        artifact=endpoint.artifact,
        replicas=endpoint.serving.replicas,
        host=DEFAULT_HOST,
        labels=endpoint.labels(),
        secret=secret_bodies(endpoint.secrets),
        **signature_fields(endpoint.bundle, context.environment.trust, context.public_keys),
    )
    return body.body() | {"lifecycle": {"create_before_destroy": True}}


def _replicas(endpoint: Endpoint) -> str | list[str]:
    """The endpoint's replica URLs, known once its resource is applied; none without replicas."""
    return reference(ENDPOINT, endpoint.id, "urls") if endpoint.serving.replicas else []


def _grpc_replicas(endpoint: Endpoint) -> str | list[str]:
    """Where the endpoint's replicas serve gRPC (host:port), known once its resource is applied."""
    return reference(ENDPOINT, endpoint.id, "grpc_addresses") if endpoint.serving.replicas else []


def route_body(app: ApplicationPlan) -> dict[str, Any]:
    return RouterBody(
        application=app.name,
        host=DEFAULT_HOST,
        port=0,
        outcomes=dict(app.outcomes) or None,
        model=router_models(app, _replicas, _grpc_replicas),
    ).body()


def metrics_body(stack: str, routes: dict[str, Any]) -> dict[str, Any]:
    """The stack's Prometheus, created once its routers run (an apply stopped before them leaves
    it for the next one) and destroyed before them."""
    body = MetricsBody(name=stack, host=DEFAULT_HOST).body()
    return body | ({"depends_on": [f"{ROUTE}.{app_id}" for app_id in sorted(routes)]} if routes else {})


def synthesize_bodies(context: StackContext) -> dict[str, dict[str, Any]]:
    """``{resource type: {id: body}}`` of the environment: the stack's resources, without the stack.

    An endpoint with no replicas runs nothing and gets no resource; an application with no
    enabled binding gets no router; a stack that runs neither gets no Prometheus. Types without a
    resource are left out.
    """
    env = context.environment
    endpoints = {e.id: endpoint_body(e, context) for e in env.endpoints if e.serving.replicas > 0}
    routes = {app.id: route_body(app) for app in env.applications if app.bindings}
    metrics = {PROMETHEUS: metrics_body(context.name, routes)} if endpoints or routes else {}
    return {kind: bodies for kind, bodies in ((ENDPOINT, endpoints), (ROUTE, routes), (METRICS, metrics)) if bodies}


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
        for kind in (ENDPOINT, ROUTE, METRICS):
            add_resources(stack, kind, resources.get(kind, {}))
        outputs = {
            f"{app_id}_{kind}": {
                "value": reference(ROUTE, app_id, kind),
                "description": f"router of {body['application']}" + (" (gRPC, host:port)" if kind != "url" else ""),
            }
            for app_id, body in routes.items()
            for kind in ("url", "grpc_address")
        }
        if resources.get(METRICS):
            outputs[f"{PROMETHEUS}_url"] = {
                "value": reference(METRICS, PROMETHEUS, "url"),
                "description": "the Prometheus scraping this stack's routers and replicas",
            }
        add_outputs(stack, outputs)
