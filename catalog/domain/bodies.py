"""The bodies of the ``modelcat`` provider's resources, one typed shape each. Pure, no IO.

The local target writes them (``Body.body()``: the resource's JSON in ``cdk.tf.json``) and the
provider derives its Terraform schema from them (``catalog.provider.body_schema``), so a field is
named, typed and described once.

- ``modelcat_endpoint`` is an ``EndpointBody``: one model version's replicas; its ``secret`` blocks
  name the environment's secrets by Vault KV v2 path (and pinned version), never their values: the
  provider reads them when it starts the replicas (``catalog.provider.secrets``). Its ``bundle`` (the
  version's signing bundle, by URI and digest), ``require_signatures`` and ``trusted_key`` blocks
  (the environment's trust policy: a public key as its PEM text, which is not secret; a Vault
  Transit key by reference, whose versions the provider reads when it starts replicas) are what a
  replica verifies before it listens.
- ``modelcat_route`` is a ``RouterBody``: one application's router. Its ``model`` blocks are the
  models of the router's routing table (``catalog.serving.table``), in the table's order, each
  with its ``route`` blocks, one per version: the body is the table, apart from ``route`` being
  written ``routes`` there. Weights are integer percents; the sum of a model's weights is checked
  by ``catalog.domain.routing.split_problem``. A model block's optional ``mirror`` block is the
  table's ``mirror``: a shadow step in force (the binding's ``mirror`` with its rollout's
  ``shadow.max_abs_difference``).
- ``modelcat_metrics`` is a ``MetricsBody``: the stack's Prometheus, scraping its routers and
  replicas (``catalog.telemetry.prometheus``).

A field of type ``X | str`` holds an X or, in a synthesized body, a Terraform expression giving
one (``${modelcat_endpoint.<id>.urls}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, Field

from catalog.domain.routing import BUCKETS
from catalog.domain.strict import STRICT

if TYPE_CHECKING:  # the router reads tables with these shapes: it need not load the deployment plan
    from catalog.domain.deployment import ApplicationPlan, Endpoint
    from catalog.domain.models import SecretRef, SignatureBundle
    from catalog.domain.trust import EnvironmentKeys

__all__ = [
    "DEFAULT_HOST",
    "SECRETS_DIR_ENV",
    "Body",
    "EndpointBody",
    "MetricsBody",
    "MirrorBody",
    "ModelBody",
    "RouteBody",
    "RouterBody",
    "SecretBody",
    "TrustedKeyBody",
    "router_models",
    "secret_bodies",
    "signature_fields",
]

DEFAULT_HOST = "127.0.0.1"
SECRETS_DIR_ENV = "MODELCAT_SECRETS_DIR"  # where a replica finds its secrets' files, on every target
DEFAULT_RETENTION = "2d"  # how long the local Prometheus keeps samples
DEFAULT_SCRAPE_INTERVAL = "5s"


class Body(BaseModel):
    """A resource body or nested block; ``replaced_by``: the fields whose change replaces the object."""

    model_config = STRICT
    replaced_by: ClassVar[tuple[str, ...]] = ()

    def body(self) -> dict[str, Any]:
        """The JSON body (a field left unset, None, is left out)."""
        return self.model_dump(exclude_none=True)


class SecretBody(Body):
    """A ``secret`` block: a file the replicas read in their secrets folder, by Vault path; no value."""

    name: str = Field(description="The file's name in the replica's $MODELCAT_SECRETS_DIR")
    vault: str = Field(description="The KV v2 secret: vault://MOUNT/PATH")
    field: str | None = Field(None, description="One key of the secret's data; default: the whole data as JSON")
    version: int | None = Field(None, description="A pinned KV version; default: the latest when replicas start")


class TrustedKeyBody(Body):
    """A ``trusted_key`` block: a key whose signature a replica accepts (one of ``pem``, ``vault``)."""

    name: str = Field(description="The trust policy's name of the key (trust.keys)")
    pem: str | None = Field(None, description="A public key (EC P-256/P-384), PEM text")
    vault: str | None = Field(None, description="A Vault Transit key, vault://MOUNT/keys/NAME (read at create)")
    min_version: int = Field(1, description="Signatures by an older key version are refused")


class EndpointBody(Body):
    """``modelcat_endpoint``: ``replicas`` processes serving one model version, verified against
    ``digest`` and, when it is signed or its environment requires signatures, against its bundle."""

    # trusted_key cannot (a nested block): the provider's update restarts the replicas under new keys
    replaced_by: ClassVar[tuple[str, ...]] = (
        "name", "model", "version", "digest", "artifact", "host", "bundle", "bundle_digest", "require_signatures",
    )  # fmt: skip

    name: str = Field(
        description="Endpoint name (letters, digits, '.', '_', '-'); names its record in the run directory"
    )
    model: str = Field(description="Model name, as in models.yaml")
    version: str = Field(description="Model version, as in models.yaml")
    digest: str = Field(description="sha256:<64 hex> the replicas must serve")
    artifact: str = Field(description="Path (relative to the catalog's folder) or catalog URI (file://, oci://)")
    replicas: int = Field(description="Replica processes to run (>= 1)")
    host: str = Field(DEFAULT_HOST, description=f"Address the replicas listen on (default {DEFAULT_HOST})")
    labels: dict[str, str] | None = Field(None, description="Free-form labels, kept in the record")
    secret: list[SecretBody] | None = Field(
        None, description="Secrets handed to each replica as files (mode 0400) in a private folder"
    )
    bundle: str | None = Field(
        None, description="The version's signing bundle (OpenSSF model signing v1.0): its URI in a catalog store"
    )
    bundle_digest: str | None = Field(None, description="sha256:<64 hex> of the bundle file")
    require_signatures: bool | None = Field(
        None, description="true: the replicas serve only bytes a trusted_key signed (no bundle: nothing starts)"
    )
    trusted_key: list[TrustedKeyBody] | None = Field(
        None, description="The keys whose signature the replicas accept (the environment's trust policy)"
    )


class RouteBody(Body):
    """A ``route`` block: one version's share of its model's traffic, a route of the routing table."""

    version: str = Field(description="Model version")
    weight: Annotated[int, Field(ge=0, le=BUCKETS)] = Field(
        description=f"Integer percent; a model's weights sum to {BUCKETS}"
    )
    digest: str = Field(description="sha256 digest the version's replicas serve")
    replicas: list[str] | str = Field(
        description="Base URLs of the version's replicas, e.g. modelcat_endpoint.x.urls (empty only at weight 0)"
    )
    grpc_replicas: list[str] | str | None = Field(
        None,
        description="host:port where the version's replicas serve OIP over gRPC, e.g. "
        "modelcat_endpoint.x.grpc_addresses (none: the router answers its gRPC requests UNAVAILABLE)",
    )


class MirrorBody(Body):
    """A ``mirror`` block: requests copied to a version whose answers are compared, never returned."""

    version: str = Field(description="The mirrored version (one of the model's routes, with replicas)")
    percent: Annotated[int, Field(ge=1, le=BUCKETS)] = Field(
        description="Integer percent of the model's routed requests copied to it"
    )
    max_abs_difference: Annotated[float, Field(ge=0.0)] = Field(
        description="Scores agree when they differ by at most this; labels agree when equal"
    )


class ModelBody(Body):
    """A ``model`` block: one model of the routing table, its versions' routes in their declared order."""

    name: str = Field(description="Model name")
    sticky_key: str | None = Field(None, description="Request header pinning a caller to one version of the model")
    route: list[RouteBody] = Field(
        description="The model's versions, in the order that fixes their buckets (the one being rolled out last)"
    )
    mirror: MirrorBody | None = Field(None, description="A shadow step in force: a share of requests mirrored")


class RouterBody(Body):
    """``modelcat_route``: one application's router, serving the routing table of its ``model`` blocks."""

    replaced_by: ClassVar[tuple[str, ...]] = ("application", "port", "host")

    application: str = Field(description="Application name")
    host: str = Field(DEFAULT_HOST, description=f"Address to listen on (default {DEFAULT_HOST})")
    port: int = Field(0, description="Port to listen on (default 0: any free port)")
    outcomes: dict[str, str] | None = Field(
        None, description="The outcomes the application declares (name: kind), accepted by POST /v2/feedback"
    )
    model: list[ModelBody] = Field(description="The routing table: per model, its routes")


class MetricsBody(Body):
    """``modelcat_metrics``: the stack's Prometheus, scraping the routers and replicas the provider runs."""

    replaced_by: ClassVar[tuple[str, ...]] = ("name", "host", "port", "retention", "scrape_interval")

    name: str = Field(description="The stack's name (names the Prometheus in plans and status)")
    host: str = Field(DEFAULT_HOST, description=f"Address to listen on (default {DEFAULT_HOST})")
    port: int = Field(0, description="Port to listen on (default 0: a free port, kept in the run state)")
    retention: str = Field(
        DEFAULT_RETENTION,
        description=f"How long samples are kept (--storage.tsdb.retention.time, default {DEFAULT_RETENTION})",
    )
    scrape_interval: str = Field(
        DEFAULT_SCRAPE_INTERVAL, description=f"How often each target is scraped (default {DEFAULT_SCRAPE_INTERVAL})"
    )


def secret_bodies(secrets: Iterable[SecretRef]) -> list[SecretBody] | None:
    """The ``secret`` blocks of an endpoint whose environment names ``secrets`` (None: it names none)."""
    blocks = [SecretBody(name=s.name, vault=s.vault, field=s.field, version=s.version) for s in secrets]
    return blocks or None


def signature_fields(bundle: SignatureBundle | None, trust: EnvironmentKeys, pems: Mapping[str, str]) -> dict[str, Any]:
    """An endpoint body's signature fields: none for an unsigned version of an environment that
    does not require signatures (nothing to verify), else the bundle and the trusted keys (``pems``:
    the PEM text of each public key, by name)."""
    if bundle is None and not trust.required:
        return {}
    keys = [
        TrustedKeyBody(name=k.name, pem=pems.get(k.name) if k.public_key else None, vault=k.vault,
                       min_version=k.min_version)
        for k in trust.keys
    ]  # fmt: skip
    return {
        "bundle": bundle.uri if bundle else None,
        "bundle_digest": bundle.digest if bundle else None,
        "require_signatures": True if trust.required else None,
        "trusted_key": keys,
    }


def router_models(
    app: ApplicationPlan,
    replicas: Callable[[Endpoint], list[str] | str],
    grpc_replicas: Callable[[Endpoint], list[str] | str] | None = None,
) -> list[ModelBody]:
    """An application's routing table as ``model`` blocks: per binding its model, per route its
    version in the catalog's order, and its mirror when a shadow step is in force;
    ``replicas(endpoint)`` says where each version is served (and ``grpc_replicas(endpoint)`` where
    over gRPC, when the target serves it)."""
    return [
        ModelBody(
            name=binding.model,
            sticky_key=binding.sticky_key,
            route=[
                RouteBody(
                    version=route.version,
                    weight=route.weight,
                    digest=route.endpoint.digest,
                    replicas=replicas(route.endpoint),
                    grpc_replicas=grpc_replicas(route.endpoint) if grpc_replicas else None,
                )
                for route in binding.routes
            ],
            mirror=MirrorBody(
                version=binding.mirror.version,
                percent=binding.mirror.percent,
                max_abs_difference=binding.mirror.max_abs_difference,
            )
            if binding.mirror is not None
            else None,
        )
        for binding in app.bindings
    ]
