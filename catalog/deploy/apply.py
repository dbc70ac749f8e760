"""Planning, applying and destroying stacks: Terraform first, then the processes it left running.

What ``modelcat plan``, ``apply`` and ``destroy`` decide: which stacks, what each would change
(Terraform's plan and the leftovers it does not account for, see ``catalog.deploy.leftovers``),
whether to ask, what to run. What is shown and asked is the ``Watcher``'s: the CLI prints each
step, streams Terraform's output under a header, shows a plan in model terms and asks before
anything changes. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from catalog.deploy.leftovers import Leftover, find_leftovers, stop_leftovers, untracked
from catalog.deploy.stacks import (
    applied_stacks,
    plan_stack,
    prepare,
    select_stacks,
    stack_has_resources,
)
from catalog.errors import ModelcatError, UsageError
from catalog.layout import run_dir, split_stack_name, state_root
from catalog.terraform import ApplyOutcome, PlanOutcome, Workspace
from catalog.terraform.workspace import OnOutput
from catalog.validate import validate_file

__all__ = [
    "Applied",
    "StackPlan",
    "Watcher",
    "apply_saved_plan",
    "apply_stacks",
    "destroy_stacks",
    "plan_stacks",
]


class Watcher(Protocol):
    """Who watches a plan, apply or destroy: shown each step, and asked before anything changes."""

    def step(self, text: str) -> None:
        """What happens next (``planning production-local``)."""

    def terraform_output(self, stack: str, doing: str) -> OnOutput | None:
        """Where Terraform's output goes while it is ``doing`` (``applying``) ``stack``; None: nowhere."""

    def show_plan(self, plan: StackPlan) -> None:
        """What applying ``plan`` would change."""

    def confirm(self, question: str) -> bool:
        """Whether to go ahead (``apply these changes to production-local?``)."""


@dataclass(frozen=True)
class StackPlan:
    """What applying a stack would change: Terraform's plan, and processes to stop besides it.
    ``orphan``: the catalog no longer declares the stack, so the plan destroys it."""

    stack: str
    outcome: PlanOutcome
    leftovers: list[Leftover] = field(default_factory=list)
    orphan: bool = False

    @property
    def has_changes(self) -> bool:
        return self.outcome.has_changes or bool(self.leftovers)


@dataclass(frozen=True)
class Applied:
    """What an apply or destroy of one stack did; ``stopped``: processes it stopped that an
    interrupted run had left running."""

    stack: str
    added: int = 0
    changed: int = 0
    destroyed: int = 0
    stopped: int = 0


def _applied(stack: str, outcome: ApplyOutcome, stopped: int = 0) -> Applied:
    return Applied(stack, outcome.added, outcome.changed, outcome.destroyed, stopped)


def _leftovers(workspace: Workspace, everything: bool, planned: PlanOutcome | None = None) -> list[Leftover]:
    """Records Terraform is not the one to clean up (any record when ``everything``); with a plan,
    only those with a running process that no resource of the plan holds."""
    found = find_leftovers(run_dir(workspace.root, workspace.stack), workspace.stack, everything=everything)
    return found if planned is None else untracked(found, planned.resource_changes)


def _stop_leftovers(workspace: Workspace, everything: bool) -> int:
    """Once Terraform is done with the stack: stop what it left running; how many processes.

    Listed right after Terraform finished, before any other apply of the stack could get past its
    init and plan, so a deposed record of another run is never taken for a leftover."""
    return stop_leftovers(run_dir(workspace.root, workspace.stack), _leftovers(workspace, everything))


def plan_stacks(
    catalog_path: Path,
    target: str | None = None,
    only: Iterable[str] | None = None,
    terraform: str | None = None,
    out: Path | None = None,
) -> Iterator[StackPlan]:
    """The plan of each stack as it is made: the declared stacks first, then the orphans to
    destroy. ``out`` saves the plan, of one stack only (UsageError naming them otherwise)."""
    prepared = prepare(catalog_path, target, only, terraform)
    if out is not None and (len(prepared.workspaces) != 1 or prepared.orphans):
        names = ", ".join(w.stack for w in [*prepared.workspaces, *prepared.orphans])
        raise UsageError(f"--out saves the plan of one stack; choose one with --env (stacks: {names})")
    for workspace, orphan in prepared.stacks():
        outcome = workspace.plan(out, destroy=orphan)
        yield StackPlan(workspace.stack, outcome, _leftovers(workspace, orphan, outcome), orphan)


def apply_saved_plan(catalog_path: Path, plan_file: Path, watcher: Watcher, terraform: str | None = None) -> Applied:
    """Apply a plan saved by ``plan_stacks`` (refused when the catalog or the state moved since)."""
    stack = plan_stack(plan_file)
    environment, target = split_stack_name(stack)
    prepared = prepare(catalog_path, target, [environment], terraform)  # the catalog as it is now
    (workspace,) = prepared.workspaces
    outcome = workspace.apply(plan_file, on_output=watcher.terraform_output(stack, "applying the saved plan"))
    return _applied(stack, outcome, _stop_leftovers(workspace, False))


def apply_stacks(
    catalog_path: Path,
    watcher: Watcher,
    target: str | None = None,
    only: Iterable[str] | None = None,
    terraform: str | None = None,
    auto_approve: bool = False,
) -> list[Applied]:
    """Make what runs match the catalog, stack by stack; a stack the catalog no longer declares is
    destroyed. Each plan is shown and confirmed first unless ``auto_approve``."""
    watcher.step(f"synthesizing the stacks of {catalog_path}")
    prepared = prepare(catalog_path, target, only, terraform)
    return [_apply_stack(workspace, orphan, watcher, auto_approve) for workspace, orphan in prepared.stacks()]


def _apply_stack(workspace: Workspace, orphan: bool, watcher: Watcher, auto_approve: bool) -> Applied:
    """Apply one stack (destroy it when ``orphan``), asking first unless ``auto_approve``; then
    stop what an interrupted run left behind."""
    doing = "destroying: the catalog no longer declares it" if orphan else "applying"
    if auto_approve:  # nobody reads a preview: one Terraform apply plans and applies (~3 s less)
        run = workspace.destroy if orphan else workspace.apply
        outcome = run(on_output=watcher.terraform_output(workspace.stack, doing))
        return _applied(workspace.stack, outcome, _stop_leftovers(workspace, orphan))
    saved = workspace.dir / ".modelcat-apply.tfplan"
    try:
        watcher.step(f"planning {workspace.stack}")
        planned = workspace.plan(saved, destroy=orphan)
        plan = StackPlan(workspace.stack, planned, _leftovers(workspace, orphan, planned), orphan)
        watcher.show_plan(plan)
        if not plan.has_changes:
            return Applied(workspace.stack)
        question = (
            f"destroy everything in {workspace.stack}?" if orphan else f"apply these changes to {workspace.stack}?"
        )
        if not watcher.confirm(question):
            raise UsageError(f"apply of {workspace.stack} cancelled; nothing was changed")
        result = Applied(workspace.stack)  # only processes to stop
        if planned.has_changes:
            result = _applied(
                workspace.stack, workspace.apply(saved, on_output=watcher.terraform_output(workspace.stack, doing))
            )
    finally:
        saved.unlink(missing_ok=True)
    return replace(result, stopped=_stop_leftovers(workspace, orphan))


def destroy_stacks(
    catalog_path: Path,
    watcher: Watcher,
    only: Iterable[str] = (),
    terraform: str | None = None,
    auto_approve: bool = False,
) -> list[Applied]:
    """Stop everything of every applied stack (of the environments ``only``, or all), whatever
    state the catalog is in: Terraform destroys what its state holds, then every process the run
    records list is stopped. Each stack's plan is shown and confirmed first unless
    ``auto_approve``. What each stack that held something lost."""
    only = list(only)
    try:  # only to know its environments: destroy works whatever state the catalog is in
        catalog = validate_file(catalog_path).catalog
    except ModelcatError:
        catalog = None
    select_stacks(catalog_path, catalog, only)  # refuses an unknown environment
    stacks = [s for s in applied_stacks(catalog_path) if not only or split_stack_name(s)[0] in only]
    results = []
    for stack in stacks:
        workspace = Workspace(stack, state_root(catalog_path), terraform)
        in_state = stack_has_resources(catalog_path, stack)  # else only run records are left
        if not auto_approve:  # show what goes before asking (Terraform lists it anyway when approved)
            planned = workspace.plan(destroy=True) if in_state else PlanOutcome("", False, {})
            plan = StackPlan(stack, planned, _leftovers(workspace, True, planned))
            if not plan.has_changes:
                continue
            watcher.show_plan(plan)
            if not watcher.confirm(f"destroy everything in {stack}?"):
                raise UsageError(f"destroy of {stack} cancelled; nothing was changed")
        outcome = (
            workspace.destroy(on_output=watcher.terraform_output(stack, "destroying")) if in_state else ApplyOutcome("")
        )
        stopped = _stop_leftovers(workspace, True)
        if outcome.destroyed or stopped:
            results.append(_applied(stack, outcome, stopped))
    return results
