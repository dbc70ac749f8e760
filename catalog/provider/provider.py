"""The provider ``registry.terraform.io/modelcat/modelcat``: its schema and what it serves.

Its configuration, and the catalog its data sources and resources read, are
``catalog.provider.config``'s.
"""

from __future__ import annotations

from tf.iface import Config, DataSource, Provider, Resource
from tf.schema import Attribute, Schema
from tf.types import String
from tf.utils import Diagnostics

from catalog.provider.config import DEFAULT_CATALOG, DEFAULT_RUN_DIR, ProviderConfig

__all__ = ["FULL_NAME", "ModelcatProvider"]

FULL_NAME = "registry.terraform.io/modelcat/modelcat"


class ModelcatProvider(ProviderConfig, Provider):  # type: ignore[misc]  # tf has no types: its Provider is Any
    """Data sources over models.yaml; endpoint, route and metrics resources that run local processes."""

    # -- tf.iface.Provider ------------------------------------------------------------------------

    def get_model_prefix(self) -> str:
        return "modelcat_"

    def full_name(self) -> str:
        return FULL_NAME

    def get_provider_schema(self, diags: Diagnostics) -> Schema:
        return Schema(
            attributes=[
                Attribute(
                    "catalog",
                    String(),
                    description=f"Path of models.yaml (default {DEFAULT_CATALOG!r}), relative to the working directory",
                    optional=True,
                ),
                Attribute(
                    "run_dir",
                    String(),
                    description=f"Where process records, routing tables and logs go (default {DEFAULT_RUN_DIR!r})",
                    optional=True,
                ),
            ]
        )

    def validate_config(self, diags: Diagnostics, config: Config) -> None:
        for key in ("catalog", "run_dir"):
            value = config.get(key)
            if isinstance(value, str) and not value.strip():
                diags.add_error(f"modelcat: {key} is empty", "Leave it out to use the default.", path=[key])

    def configure_provider(self, diags: Diagnostics, config: Config) -> None:
        self.configure(config)

    def get_data_sources(self) -> list[type[DataSource]]:
        from catalog.provider.data_sources import ApplicationDataSource, ModelDataSource

        return [ModelDataSource, ApplicationDataSource]

    def get_resources(self) -> list[type[Resource]]:
        from catalog.provider.endpoint import EndpointResource
        from catalog.provider.metrics import MetricsResource
        from catalog.provider.route import RouteResource

        return [EndpointResource, RouteResource, MetricsResource]
