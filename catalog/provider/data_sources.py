"""Data sources ``modelcat_model`` and ``modelcat_application``: models.yaml, validated, as values.

The catalog is read through ``catalog.validate``; a broken catalog is an error diagnostic
carrying the lines ``modelcat validate`` prints (file:line:column, field path, message, hint).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tf.iface import Config, DataSource, ReadDataContext, State
from tf.schema import Attribute, Schema
from tf.types import List, Map, Number, String

from catalog.wording import did_you_mean

if TYPE_CHECKING:
    from catalog.domain.models import Catalog
    from catalog.provider.config import ProviderConfig

__all__ = ["ApplicationDataSource", "ModelDataSource", "application_values", "model_values"]


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _unknown_name(kind: str, name: str, known: list[str]) -> tuple[str, str]:
    hint = did_you_mean(name, known)
    return f"modelcat: no {kind} named {name!r} in the catalog", f"{hint}known {kind}s: {', '.join(known)}"


def model_values(catalog: Catalog, name: str) -> dict[str, Any] | None:
    """The computed attributes of ``modelcat_model`` for model ``name`` (None if there is none)."""
    model = next((m for m in catalog.models if m.name == name), None)
    if model is None:
        return None
    versions = model.versions
    return {
        "name": model.name,
        "owner": model.owner,
        "task": model.task,
        "versions": [v.version for v in versions],
        "digests": {v.version: v.artifact.digest for v in versions},
        "stages": {v.version: v.stage for v in versions},
        "artifacts": {v.version: v.artifact.uri for v in versions},
        "metrics_json": _compact({v.version: v.metrics for v in versions}),
    }


def application_values(catalog: Catalog, name: str) -> dict[str, Any] | None:
    """The computed attributes of ``modelcat_application`` for application ``name``.

    ``routes_json`` lists every binding (disabled ones too, with ``enabled: false``) with its
    routes and its serving settings resolved over ``defaults.serving``; ``weights`` maps
    ``model@version`` to percent for the enabled bindings.
    """
    from catalog.domain.effective import effective_serving, semver_key

    app = next((a for a in catalog.applications if a.name == name), None)
    if app is None:
        return None
    versions = {(m.name, semver_key(v.version)): v for m in catalog.models for v in m.versions}
    bindings, weights = [], {}
    for binding in app.bindings:
        routes = []
        for route in binding.routes:
            version = versions[(binding.model, semver_key(route.version))]
            routes.append(
                {
                    "version": version.version,
                    "weight": route.weight,
                    "digest": version.artifact.digest,
                    "artifact": version.artifact.uri,
                }
            )
            if binding.enabled:
                weights[f"{binding.model}@{version.version}"] = route.weight
        serving = effective_serving(catalog, binding)
        bindings.append(
            {
                "model": binding.model,
                "enabled": binding.enabled,
                "sticky_key": binding.sticky_key,
                "routes": routes,
                "serving": {
                    "replicas": serving.replicas,
                    "min_replicas": serving.min_replicas,
                    "max_replicas": serving.max_replicas,
                    "target_concurrency": serving.target_concurrency,
                    "cpu": serving.cpu,
                    "memory": serving.memory,
                },
            }
        )
    return {
        "name": app.name,
        "environment": app.environment,
        "owner": app.owner,
        "models": [b.model for b in app.bindings],
        "routes_json": _compact(bindings),
        "weights": weights,
    }


class _CatalogDataSource(DataSource):  # type: ignore[misc]  # tf has no types: its DataSource is Any
    kind = ""

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider

    def _values(self, catalog: Catalog, name: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _known(self, catalog: Catalog) -> list[str]:
        raise NotImplementedError

    def read(self, ctx: ReadDataContext, config: Config) -> State | None:
        catalog = self.provider.catalog(ctx.diagnostics)
        if catalog is None:
            return None
        name = config.get("name")
        values = self._values(catalog, name) if isinstance(name, str) else None
        if values is None:
            summary, detail = _unknown_name(self.kind, str(name), self._known(catalog))
            ctx.diagnostics.add_error(summary, detail, path=["name"])
            return None
        return values  # data source states go to Terraform as they are: every value is plain already


class ModelDataSource(_CatalogDataSource):
    """One model of the catalog: owner, task, versions in catalog order, and per version its
    digest, stage, artifact URI and metrics."""

    kind = "model"

    @classmethod
    def get_name(cls) -> str:
        return "model"

    @classmethod
    def get_schema(cls) -> Schema:
        return Schema(
            attributes=[
                Attribute("name", String(), description="The model's name in models.yaml", required=True),
                Attribute("owner", String(), computed=True),
                Attribute("task", String(), computed=True),
                Attribute("versions", List(String()), description="Versions in catalog order", computed=True),
                Attribute("digests", Map(String()), description="version -> sha256 digest", computed=True),
                Attribute("stages", Map(String()), description="version -> stage", computed=True),
                Attribute("artifacts", Map(String()), description="version -> artifact URI", computed=True),
                Attribute("metrics_json", String(), description="JSON: version -> {metric: value}", computed=True),
            ]
        )

    def _values(self, catalog: Catalog, name: str) -> dict[str, Any] | None:
        return model_values(catalog, name)

    def _known(self, catalog: Catalog) -> list[str]:
        return [m.name for m in catalog.models]


class ApplicationDataSource(_CatalogDataSource):
    """One application: environment, owner, bound models, routes with resolved serving, weights."""

    kind = "application"

    @classmethod
    def get_name(cls) -> str:
        return "application"

    @classmethod
    def get_schema(cls) -> Schema:
        return Schema(
            attributes=[
                Attribute("name", String(), description="The application's name in models.yaml", required=True),
                Attribute("environment", String(), computed=True),
                Attribute("owner", String(), computed=True),
                Attribute("models", List(String()), description="Bound models, in binding order", computed=True),
                Attribute(
                    "routes_json",
                    String(),
                    description="JSON: per binding model, enabled, sticky_key, routes "
                    "[{version, weight, digest, artifact}] and serving (defaults resolved)",
                    computed=True,
                ),
                Attribute(
                    "weights", Map(Number()), description="model@version -> percent (enabled bindings)", computed=True
                ),
            ]
        )

    def _values(self, catalog: Catalog, name: str) -> dict[str, Any] | None:
        return application_values(catalog, name)

    def _known(self, catalog: Catalog) -> list[str]:
        return [a.name for a in catalog.applications]
