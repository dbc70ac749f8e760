"""Every stack's resource bodies, without the CDK app: ``{stack: {resource type: {id: body}}}``.

What ``modelcat synth`` writes under ``resource`` in each ``cdk.tf.json``, built by the targets'
own ``synthesize_bodies(context)`` and nothing else: no ``cdktn.App``, no Node process, no jsii
assembly. ``modelcat diff`` compares two of these to tell what an apply would create, update,
replace or delete (``catalog.synth.blast``).

The targets are found through ``TARGET_MODULES`` (name -> module, imported on first use). A
target module must define ``synthesize_bodies(context: StackContext) -> {type: {id: body}}``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from catalog.domain.models import Catalog
from catalog.errors import UsageError
from catalog.synth.app import TARGET_MODULES, selected_environments, stack_context
from catalog.synth.base import StackContext
from catalog.synth.node import prepare_jsii

__all__ = [
    "TARGET_MODULES",
    "Bodies",
    "StackResources",
    "body_builder",
    "split_stack_name",
    "synthesize_resources",
]

Bodies = dict[str, dict[str, dict[str, Any]]]  # resource type -> id -> body
StackResources = dict[str, Bodies]  # stack name -> its bodies


def body_builder(target: str) -> Callable[[StackContext], Bodies]:
    """The target's ``synthesize_bodies``; UsageError when modelcat has no such target (yet)."""
    module_name = TARGET_MODULES.get(target)
    if module_name is None:
        raise UsageError(f"unknown target {target!r}; the targets are {', '.join(TARGET_MODULES)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name):
            raise UsageError(f"target {target!r} is not available in this modelcat ({module_name} is missing)") from e
        raise UsageError(f"target {target!r} needs the Python package {e.name!r}, which is not installed") from e
    builder = getattr(module, "synthesize_bodies", None)
    if not callable(builder):
        raise UsageError(f"target {target!r}: {module_name} has no synthesize_bodies(context)")
    return builder  # type: ignore[no-any-return]


def split_stack_name(name: str) -> tuple[str, str]:
    """(environment, target) of a stack name made by ``stack_name`` (target names hold no '-')."""
    environment, _, target = name.rpartition("-")
    return environment, target


def synthesize_resources(
    catalog: Catalog | None,
    catalog_path: Path,
    target: str | None = None,
    only: Iterable[str] | None = None,
) -> StackResources:
    """``{stack: {resource type: {id: body}}}`` of every environment (or just ``only``), each for
    ``target`` when given, else for its own target; ``{}`` for no catalog.

    The bodies are the ones ``synthesize`` writes into ``cdk.tf.json`` (paths in them relative to
    the stack's working directory ``.modelcat/terraform/<stack>/`` beside ``catalog_path``).
    UsageError when a target is unknown or missing, or an environment lacks its settings block.
    """
    if catalog is None:
        return {}
    builders: dict[str, Callable[[StackContext], Bodies]] = {}
    stacks: StackResources = {}
    for env in selected_environments(catalog, only):
        chosen = target or env.target
        if chosen not in builders:
            if chosen != "local":
                prepare_jsii()  # the typed structs import jsii, which starts the Node the venv ships
            builders[chosen] = body_builder(chosen)
        if chosen != "local" and env.settings(chosen) is None:
            raise UsageError(
                f"environment {env.name!r} has no {chosen}: block, which target {chosen} needs; "
                f"add one under environments: in the catalog, or choose another target"
            )
        context = stack_context(env, chosen, catalog_path)
        name = context.name
        # as written: a type without resources is left out, ids sorted
        built = builders[chosen](context)
        stacks[name] = {kind: dict(sorted(built[kind].items())) for kind in sorted(built) if built[kind]}
    return stacks
