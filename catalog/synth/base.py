"""The interface every target implements, and what it is handed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from catalog.domain.deployment import BindingPlan, Environment, RoutePlan
from catalog.errors import UsageError

__all__ = [
    "Bodies",
    "Refusal",
    "StackContext",
    "Target",
    "mirrored_route",
    "served_bindings",
    "served_refusals",
]

Bodies = dict[str, dict[str, dict[str, Any]]]  # a stack's resources: resource type -> id -> body


@dataclass(frozen=True, slots=True)
class StackContext:
    """Where the stack's Terraform runs, as paths relative to its working directory.

    ``catalog`` is the catalog file and ``state_root`` the ``.modelcat`` directory beside it, both
    seen from ``.modelcat/terraform/<stack>/``; relative paths keep the synthesized JSON identical
    in every checkout. ``public_keys``: the PEM text of each public key the environment's trust
    policy names (key name -> PEM), read from the repository, for the replicas to verify against.
    """

    name: str
    environment: Environment
    catalog: str
    state_root: str
    public_keys: Mapping[str, str] = field(default_factory=dict, hash=False)


def served_bindings(environment: Environment) -> Iterator[tuple[str, BindingPlan]]:
    """Each binding that gets serving objects (routes and replicas), with its application's name."""
    for app in environment.applications:
        for binding in app.bindings:
            if binding.routes and binding.routes[0].endpoint.serving.replicas > 0:
                yield app.name, binding


def mirrored_route(binding: BindingPlan) -> RoutePlan | None:
    """The route of the version a shadow step in force mirrors to (its weight 0), if it has one."""
    mirror = binding.mirror
    return next((r for r in binding.routes if r.version == mirror.version), None) if mirror else None


def served_refusals(
    environment: Environment, *limits: Callable[[str, BindingPlan], Iterable[Refusal]]
) -> list[Refusal]:
    """What ``limits`` (each of an application's name and one of its served bindings) refuse of ``environment``."""
    return [
        refusal for app, binding in served_bindings(environment) for limit in limits for refusal in limit(app, binding)
    ]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Something a target cannot deploy: which binding, the catalog field that asks for it, and why.

    ``field`` is a path inside the binding (``("rollout", "step_percent")``, ``("routes",)``), or,
    when ``version`` is set, inside that version of the binding's model (``("artifact", "uri")``),
    or, when ``environment`` is set, inside that environment's block (``("secrets", 0)``).
    ``message`` names no binding (``catalog.synth.limits`` and the synth-time refusals add it).
    """

    code: str
    application: str
    model: str
    field: tuple[str | int, ...]
    message: str
    hint: str
    version: str | None = None
    environment: str | None = None  # set: ``field`` is in this environment's own block (e.g. its secrets)

    @property
    def subject(self) -> str:
        """What is refused: the environment, or the application's binding of the model."""
        if self.environment is not None:
            return f"environment {self.environment!r}"
        return f"application {self.application!r}, model {self.model!r}"

    def error(self) -> UsageError:
        """This refusal raised at synth (the API's guard; ``validate`` reports it with a line first)."""
        return UsageError(f"{self.subject}: {self.message}; {self.hint}")


class Target(Protocol):
    """A backend that turns an environment's endpoints and routes into Terraform resources.

    A new target (kserve, sagemaker) is a module under ``catalog/synth/targets/`` registered in
    ``catalog.synth.app`` (``TARGET_CLASSES``); an environment synthesized for it must have the
    settings block of the same name (``context.environment.settings(name)``), which ``app`` checks.
    Its ``bodies`` are best built with ``catalog.synth.typed`` (one builder per resource type, checked
    by the provider's typed structs, the provider's jsii assembly never loaded) and added with
    ``catalog.synth.emit.add_resources`` (one placeholder per type, the bodies written after synth);
    Kubernetes conventions (names, labels, provider block) are in ``catalog.synth.kube``.
    """

    name: str

    def refusals(self, environment: Environment) -> list[Refusal]:
        """What of ``environment`` this target cannot deploy; pure, empty when it can deploy it all.
        ``validate`` reports each as a problem at its field (``catalog.synth.limits``)."""

    def bodies(self, context: StackContext) -> Bodies:
        """The stack's resources without the stack: no ``cdktn.App``, no Node process, no jsii
        assembly; what ``build`` adds and ``catalog.synth.resources`` compares (``modelcat diff``)."""

    def build(self, stack: Any, context: StackContext) -> None:
        """Add the environment's resources to ``stack`` (a ``cdktn.TerraformStack``)."""
