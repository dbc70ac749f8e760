"""From models.yaml to Terraform working directories: synthesize each stack into its workspace.

A stack's workspace is ``<catalog dir>/.modelcat/terraform/<stack>/`` (see
``catalog.terraform.Workspace``); the synthesized ``cdk.tf.json`` names every path relative to it.
``prepare`` validates the catalog, synthesizes into a temporary directory and writes each stack's
JSON into its workspace only when it changed, so a no-op plan reuses Terraform's init.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from catalog.domain.deployment import Environment, environments
from catalog.domain.models import Catalog
from catalog.errors import UsageError
from catalog.synth import STATE_ROOT, selected_environments, stack_targets, synthesize
from catalog.terraform import Workspace
from catalog.validate import validate_file

__all__ = ["Prepared", "existing_stacks", "plan_stack", "prepare", "state_root"]


def state_root(catalog_path: Path) -> Path:
    """The ``.modelcat`` directory beside the catalog: workspaces, run records, artifact store."""
    return catalog_path.resolve().parent / STATE_ROOT


@dataclass(frozen=True)
class Prepared:
    """A validated catalog and the workspaces of its stacks, each holding its current config."""

    catalog: Catalog
    environments: list[Environment]
    workspaces: list[Workspace]


def prepare(
    catalog_path: Path, target: str | None = None, only: Iterable[str] | None = None, terraform: str | None = None
) -> Prepared:
    """Validate, synthesize and write each stack into its workspace: ``target`` for every
    environment when given, else each environment's own. Only the local target can be applied
    here (the others need a cluster or a cloud account): any other is refused, naming it."""
    catalog = validate_file(catalog_path).raise_for_errors()
    wanted = list(only) if only else None
    for env, env_target in stack_targets(selected_environments(catalog, wanted), target):
        if env_target != "local":
            what = f"--target {target}" if target else f"environment {env.name!r} deploys to {env_target}"
            raise UsageError(
                f"{what}: modelcat plan/apply can only apply the local target here; synthesize it with "
                f"'modelcat synth --target {env_target}' and apply it with your own Terraform"
                + ("" if target else ", or run it on this machine with --target local")
            )
    root = state_root(catalog_path)
    workspaces = []
    with tempfile.TemporaryDirectory(prefix="modelcat-synth-") as tmp:
        result = synthesize(catalog, catalog_path, Path(tmp), target, wanted)
        for stack in result.stacks:
            workspace = Workspace(stack.name, root, terraform)
            workspace.write_config(stack.path.read_bytes())
            workspaces.append(workspace)
    return Prepared(catalog, environments(catalog, wanted), workspaces)


def existing_stacks(catalog_path: Path) -> list[str]:
    """Stacks that have a workspace with state (applied at least once), whatever the catalog says now."""
    base = state_root(catalog_path) / "terraform"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "terraform.tfstate").exists())


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
