"""The ``.modelcat`` folder beside a catalog, named in one place::

    .modelcat/
      terraform/<stack>/     one Terraform workspace per stack: its configuration, state and init
      terraform/.providers/  the filesystem mirror the workspaces find the provider in
      run/<stack>/           the local provider's records, routing tables and logs of its processes
      run/<stack>/analytics/ the stack's outcome events (and, from its routers, assignments)
      cache/                 verified copies of artifacts fetched from OCI registries
      rollouts/              one lock per binding whose rollout a controller runs

A stack is one environment deployed with one target, named ``<environment>-<target>``. Standard
library only: the provider imports this when Terraform starts it.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import TypeVar

__all__ = [
    "STATE_ROOT",
    "analytics_dir",
    "cache_dir",
    "rollout_lock",
    "run_dir",
    "run_root",
    "split_stack_name",
    "stack_name",
    "state_root",
    "workspace_dir",
    "workspace_root",
]

STATE_ROOT = ".modelcat"

P = TypeVar("P", bound=PurePath)


def stack_name(environment: str, target: str) -> str:
    """One stack per environment and target, e.g. ``production-local``."""
    return f"{environment}-{target}"


def split_stack_name(name: str) -> tuple[str, str]:
    """(environment, target) of a stack name made by ``stack_name`` (target names hold no '-')."""
    environment, _, target = name.rpartition("-")
    return environment, target


def state_root(catalog_path: Path) -> Path:
    """The ``.modelcat`` folder beside the catalog file."""
    return catalog_path.resolve().parent / STATE_ROOT


def workspace_root(root: P) -> P:
    """The folder of every stack's Terraform workspace, in the ``.modelcat`` folder ``root``."""
    return root / "terraform"


def workspace_dir(root: P, stack: str) -> P:
    """The Terraform workspace of ``stack``, in the ``.modelcat`` folder ``root``."""
    return workspace_root(root) / stack


def run_root(root: P) -> P:
    """The folder of every stack's run directory, in the ``.modelcat`` folder ``root``."""
    return root / "run"


def run_dir(root: P, stack: str) -> P:
    """Where the local target's provider keeps the records, routing tables and logs of the
    processes of ``stack``, in the ``.modelcat`` folder ``root``."""
    return run_root(root) / stack


def analytics_dir(run_dir: P) -> P:
    """The analytics folder of a stack's run directory ``run_dir``: the outcome events posted to its
    routers or imported, under ``outcomes/application=<app>/day=<YYYY-MM-DD>/``."""
    return run_dir / "analytics"


def cache_dir(root: P) -> P:
    """Verified copies of artifacts fetched from OCI registries (git-ignored with the folder)."""
    return root / "cache"


def rollout_lock(root: P, application: str, model: str) -> P:
    """The lock a rollout controller of ``application``'s ``model`` binding holds while it runs, in
    the ``.modelcat`` folder ``root``."""
    return root / "rollouts" / f"{application}.{model}.lock"
