"""Entry point of the console script ``terraform-provider-modelcat`` (started by Terraform)."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from tf.runner import run_provider

    from catalog.provider.provider import ModelcatProvider

    run_provider(ModelcatProvider())
