"""The interface every target implements, and what it is handed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from catalog.domain.deployment import Environment

__all__ = ["StackContext", "Target", "stack_name"]


def stack_name(environment: str, target: str) -> str:
    """One stack per environment and target, e.g. ``production-local``."""
    return f"{environment}-{target}"


@dataclass(frozen=True, slots=True)
class StackContext:
    """Where the stack's Terraform runs, as paths relative to its working directory.

    ``catalog`` is the catalog file and ``state_root`` the ``.modelcat`` directory beside it, both
    seen from ``.modelcat/terraform/<stack>/``; relative paths keep the synthesized JSON identical
    in every checkout.
    """

    name: str
    environment: Environment
    catalog: str
    state_root: str


class Target(Protocol):
    """A backend that turns an environment's endpoints and routes into Terraform resources.

    A new target (kserve, sagemaker) is a module under ``catalog/synth/targets/`` registered in
    ``catalog.synth.app`` (``_TARGET_CLASSES``); an environment synthesized for it must have the
    settings block of the same name (``context.environment.settings(name)``), which ``app`` checks.
    Its bodies are best built with ``catalog.synth.typed`` (one builder per resource type, checked
    by the provider's typed structs, the provider's jsii assembly never loaded) and added with
    ``catalog.synth.emit.add_resources`` (one placeholder per type, the bodies written after synth);
    Kubernetes conventions (names, labels, provider block) are in ``catalog.synth.kube``.
    """

    name: str

    def build(self, stack: Any, context: StackContext) -> None:
        """Add the environment's resources to ``stack`` (a ``cdktn.TerraformStack``)."""
