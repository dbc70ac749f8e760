"""From models.yaml to Terraform working directories: synthesize each stack into its workspace.

A stack's workspace is ``<catalog dir>/.modelcat/terraform/<stack>/`` (see
``catalog.terraform.Workspace``); the synthesized ``cdk.tf.json`` names every path relative to it.
``prepare`` validates the catalog, synthesizes into a temporary directory and writes each stack's
JSON into its workspace only when it changed, so a no-op plan reuses Terraform's init. A stack
that was applied once and that the catalog no longer declares (no application runs in its
environment any more) is an *orphan*: ``prepare`` hands its workspace back too, to be destroyed.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from catalog.domain.deployment import Environment
from catalog.domain.models import Catalog
from catalog.errors import UsageError
from catalog.layout import run_root, split_stack_name, state_root, workspace_dir, workspace_root
from catalog.synth import check_environments, selected_environments, stack_targets, synthesize
from catalog.terraform import Workspace
from catalog.terraform.workspace import STATE_FILE
from catalog.validate import validate_file

__all__ = [
    "Prepared",
    "applied_stacks",
    "existing_stacks",
    "plan_stack",
    "prepare",
    "select_stacks",
    "stack_has_resources",
]


@dataclass(frozen=True)
class Prepared:
    """A validated catalog and the workspaces of its stacks, each holding its current config."""

    catalog: Catalog
    environments: list[Environment]
    workspaces: list[Workspace]
    orphans: list[Workspace] = field(default_factory=list)  # applied stacks the catalog no longer declares

    def stacks(self) -> list[tuple[Workspace, bool]]:
        """(workspace, orphan) of every stack: the declared ones first, then those to destroy."""
        return [(w, False) for w in self.workspaces] + [(w, True) for w in self.orphans]


def prepare(
    catalog_path: Path, target: str | None = None, only: Iterable[str] | None = None, terraform: str | None = None
) -> Prepared:
    """Validate, synthesize and write each stack into its workspace: ``target`` for every
    environment when given, else each environment's own. Only the local target can be applied
    here (the others need a cluster or a cloud account): any other is refused, naming it.

    ``only`` may name the environment of an orphan stack as well as the catalog's; anything else
    is refused, naming the known environments. The orphans selected come back in ``orphans``.
    """
    catalog = validate_file(catalog_path).raise_for_errors()
    declared, orphans = select_stacks(catalog_path, catalog, only)
    envs = selected_environments(catalog, declared)
    for env, env_target in stack_targets(envs, target):
        if env_target != "local":
            what = f"--target {target}" if target else f"environment {env.name!r} deploys to {env_target}"
            raise UsageError(
                f"{what}: modelcat plan/apply can only apply the local target here; synthesize it with "
                f"'modelcat synth --target {env_target}' and apply it with your own Terraform"
                + ("" if target else ", or run it on this machine with --target local")
            )
    root = state_root(catalog_path)
    workspaces = []
    if envs:
        with tempfile.TemporaryDirectory(prefix="modelcat-synth-") as tmp:
            result = synthesize(catalog, catalog_path, Path(tmp), target, declared)
            for stack in result.stacks:
                workspace = Workspace(stack.name, root, terraform)
                workspace.write_config(stack.path.read_bytes())
                workspaces.append(workspace)
    return Prepared(catalog, envs, workspaces, [Workspace(stack, root, terraform) for stack in orphans])


def select_stacks(
    catalog_path: Path, catalog: Catalog | None, only: Iterable[str] | None = None
) -> tuple[list[str] | None, list[str]]:
    """The catalog's environments ``only`` selects (None: all of them) and the orphan stacks it
    selects: applied stacks of an environment no application of ``catalog`` runs in any more.

    UsageError naming the known environments (the catalog's and those of applied stacks) when
    ``only`` names another.
    """
    wanted = list(only) if only else None
    applied = applied_stacks(catalog_path)
    declared = {a.environment for a in catalog.applications} if catalog is not None else set()
    check_environments(wanted, declared | {split_stack_name(s)[0] for s in applied})
    orphans = [
        s for s in applied
        if split_stack_name(s)[0] not in declared and (wanted is None or split_stack_name(s)[0] in wanted)
    ]  # fmt: skip
    return (None if wanted is None else [e for e in wanted if e in declared]), orphans


def applied_stacks(catalog_path: Path) -> list[str]:
    """Stacks that hold something: resources in their Terraform state, or run records of
    processes (a run interrupted hard may leave records its state does not know)."""
    from catalog.provider.runstate import has_records

    root = state_root(catalog_path)
    on_record = [p.name for p in run_root(root).glob("*") if p.is_dir() and has_records(p)]
    in_state = [s for s in existing_stacks(catalog_path) if stack_has_resources(catalog_path, s)]
    return sorted({*in_state, *on_record})


def stack_has_resources(catalog_path: Path, stack: str) -> bool:
    """Whether the stack's Terraform state holds resources (an unreadable state counts as holding
    some: Terraform says what is wrong with it)."""
    try:
        state = json.loads((workspace_dir(state_root(catalog_path), stack) / STATE_FILE).read_bytes())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    return not isinstance(state, dict) or bool(state.get("resources"))


def existing_stacks(catalog_path: Path) -> list[str]:
    """Stacks that have a workspace with state (applied at least once), whatever the catalog says now."""
    base = workspace_root(state_root(catalog_path))
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / STATE_FILE).exists())


def plan_stack(plan_file: Path) -> str:
    """The stack a saved plan belongs to (from the configuration snapshot inside it)."""
    try:
        with zipfile.ZipFile(plan_file) as archive:
            for name in archive.namelist():
                if name.startswith("tfconfig/") and name.endswith("cdk.tf.json"):
                    metadata = json.loads(archive.read(name)).get("//", {}).get("metadata", {})
                    if metadata.get("stackName"):
                        return str(metadata["stackName"])
    except FileNotFoundError as e:
        raise UsageError(f"no saved plan at {plan_file}") from e
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UsageError(f"{plan_file} is not a plan saved by 'modelcat plan --out': {e}") from e
    raise UsageError(f"{plan_file} holds no modelcat stack (was it saved by 'modelcat plan --out'?)")
