"""Every stack's resource bodies, without the CDK app: ``{stack: {resource type: {id: body}}}``.

What ``modelcat synth`` writes under ``resource`` in each ``cdk.tf.json``, built by the targets'
own ``Target.bodies(context)`` and nothing else: no ``cdktn.App``, no Node process, no jsii
assembly. ``modelcat diff`` compares two of these to tell what an apply would create, update,
replace or delete (``catalog.synth.blast``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from catalog.domain.models import Catalog
from catalog.synth.app import get_target, selected_environments, stack_context, stack_targets
from catalog.synth.base import Bodies, Target
from catalog.synth.node import prepare_jsii

__all__ = ["StackResources", "synthesize_resources"]

StackResources = dict[str, Bodies]  # stack name -> its bodies


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
    targets: dict[str, Target] = {}
    stacks: StackResources = {}
    for env, chosen in stack_targets(selected_environments(catalog, only), target):
        if chosen not in targets:
            if chosen != "local":
                prepare_jsii()  # the typed structs import jsii, which starts the Node the venv ships
            targets[chosen] = get_target(chosen)
        context = stack_context(env, chosen, catalog_path)
        name = context.name
        # as written: a type without resources is left out, ids sorted
        built = targets[chosen].bodies(context)
        stacks[name] = {kind: dict(sorted(built[kind].items())) for kind in sorted(built) if built[kind]}
    return stacks
