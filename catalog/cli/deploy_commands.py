"""Commands that turn the catalog into running endpoints: synth, plan, apply, destroy."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from catalog.cli.common import catalog_option, command
from catalog.errors import UsageError
from catalog.synth import TARGETS

__all__ = ["apply", "destroy", "plan", "synth"]

CATALOG_OPTION = catalog_option()
TARGET_OPTION = click.option("--target", type=click.Choice(TARGETS), default="local", show_default=True)
SYNTH_TARGET_OPTION = click.option(
    "--target",
    type=click.Choice(TARGETS),
    default=None,
    help="Synthesize every environment for this target (default: each environment's own target).",
)
ENV_OPTION = click.option("--env", "envs", multiple=True, metavar="ENV", help="Only this environment (repeatable).")
TERRAFORM_OPTION = click.option(
    "--terraform",
    envvar="MODELCAT_TERRAFORM",
    metavar="BINARY",
    help="Run this terraform or tofu executable instead of the embedded Terraform.",
)
AUTO_APPROVE = click.option("--auto-approve", is_flag=True, help="Do not ask before changing anything.")


@click.command()
@CATALOG_OPTION
@SYNTH_TARGET_OPTION
@ENV_OPTION
@click.option(
    "--out", "outdir", default="cdktf.out", show_default=True, type=click.Path(file_okay=False, path_type=Path)
)
@command
def synth(path: Path, target: str | None, envs: tuple[str, ...], outdir: Path, fmt: str) -> int:
    """Synthesize Terraform JSON for every environment of the catalog (one stack each, for its target)."""
    from catalog.nogc import no_gc
    from catalog.synth import synthesize
    from catalog.validate import validate_file

    with no_gc():  # a short batch: cyclic collections would cost more than half of validating
        catalog = validate_file(path).raise_for_errors()
        result = synthesize(catalog, path, outdir, target, envs or None)
    if fmt == "json":
        stacks = [
            {"stack": s.name, "environment": s.environment, "target": s.target, "path": str(s.path), "sha256": s.sha256}
            for s in result.stacks
        ]
        click.echo(json.dumps({"outdir": str(outdir), "stacks": stacks}, indent=2))
    else:
        for s in result.stacks:
            click.echo(f"{s.name}: {s.path} (sha256 {s.sha256[:12]})")
    return 0


def _plan_report(stack: str, outcome: Any) -> dict[str, Any]:
    from catalog.synth.changes import describe_changes

    return {
        "stack": stack,
        "has_changes": outcome.has_changes,
        "changes": [vars_of(c) for c in describe_changes(outcome.changes)],
        "drift": [vars_of(c) for c in describe_changes(outcome.plan.get("resource_drift") or [])],
        "plan_file": str(outcome.plan_file) if outcome.plan_file else None,
    }


def vars_of(change: Any) -> dict[str, str]:
    return {"address": change.address, "action": change.action, "subject": change.subject, "detail": change.detail}


def _echo_plan(report: dict[str, Any], terraform_text: str, show_terraform: bool) -> None:
    click.echo(click.style(f"== {report['stack']}", bold=True))
    for drift in report["drift"]:
        click.echo(
            f"  changed outside Terraform: {drift['subject']}" + (f" ({drift['detail']})" if drift["detail"] else "")
        )
    for change in report["changes"]:
        detail = f": {change['detail']}" if change["detail"] else ""
        click.echo(f"  {change['action']:<8} {change['subject']}{detail}")
    if not report["has_changes"]:
        click.echo("  no changes: what runs matches the catalog")
    if show_terraform and report["has_changes"]:
        click.echo("  -- Terraform's plan --")
        for line in terraform_text.rstrip().splitlines():
            click.echo(f"  {line}")


def _stream(fmt: str) -> Callable[[str], None] | None:
    if fmt != "text":
        return None
    return lambda line: click.echo(click.style("  | ", dim=True) + line.rstrip("\n"))


def _confirm(question: str, auto_approve: bool) -> bool:
    if auto_approve:
        return True
    if not sys.stdin.isatty():
        raise UsageError("stdin is not a terminal, so nothing can be confirmed: pass --auto-approve")
    return click.confirm(question, default=False)


@click.command()
@CATALOG_OPTION
@SYNTH_TARGET_OPTION
@ENV_OPTION
@TERRAFORM_OPTION
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan (one stack).")
@click.option("--terraform-output/--no-terraform-output", default=True, help="Also show Terraform's own plan.")
@command
def plan(
    path: Path,
    target: str | None,
    envs: tuple[str, ...],
    terraform: str | None,
    out: Path | None,
    terraform_output: bool,
    fmt: str,
) -> int:
    """Show what apply would change, in model terms and in Terraform's own words."""
    from catalog.deploy.stacks import prepare

    prepared = prepare(path, target, envs or None, terraform)
    if out is not None and len(prepared.workspaces) != 1:
        names = ", ".join(w.stack for w in prepared.workspaces)
        raise UsageError(f"--out saves the plan of one stack; choose one with --env (stacks: {names})")
    reports = []
    for workspace in prepared.workspaces:
        outcome = workspace.plan(out)
        report = _plan_report(workspace.stack, outcome)
        reports.append(report)
        if fmt == "text":
            _echo_plan(report, outcome.text, terraform_output)
    if fmt == "json":
        click.echo(json.dumps({"stacks": reports}, indent=2))
    elif out is not None:
        click.echo(f"saved the plan to {out}: apply it with 'modelcat apply {out}'")
    return 0


@click.command()
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@CATALOG_OPTION
@SYNTH_TARGET_OPTION
@ENV_OPTION
@TERRAFORM_OPTION
@AUTO_APPROVE
@command
def apply(
    plan_file: Path | None,
    path: Path,
    target: str | None,
    envs: tuple[str, ...],
    terraform: str | None,
    auto_approve: bool,
    fmt: str,
) -> int:
    """Make what runs match the catalog: plan, confirm, apply (or apply a saved PLAN_FILE).

    Without --auto-approve the plan is shown in model terms and that very plan is applied once
    confirmed; with it, Terraform plans and applies in one go and streams what it does.
    """
    from catalog.deploy.stacks import plan_stack, prepare

    results = []
    if plan_file is not None:
        stack = plan_stack(plan_file)
        environment, _, stack_target = stack.rpartition("-")
        prepared = prepare(path, stack_target, [environment], terraform)  # the catalog as it is now
        (workspace,) = prepared.workspaces
        outcome = workspace.apply(plan_file, on_output=_stream(fmt))  # refused when stale
        results.append({"stack": stack, **_counts(outcome)})
    else:
        prepared = prepare(path, target, envs or None, terraform)
        for workspace in prepared.workspaces:
            if auto_approve:  # nobody reads a preview: one Terraform apply plans and applies (~3 s less)
                results.append({"stack": workspace.stack, **_counts(workspace.apply(on_output=_stream(fmt)))})
                continue
            saved = workspace.dir / ".modelcat-apply.tfplan"
            try:
                planned = workspace.plan(saved)
                report = _plan_report(workspace.stack, planned)
                if fmt == "text":
                    _echo_plan(report, planned.text, show_terraform=False)
                if not planned.has_changes:
                    results.append({"stack": workspace.stack, "added": 0, "changed": 0, "destroyed": 0})
                    continue
                if not _confirm(f"apply these changes to {workspace.stack}?", auto_approve):
                    raise UsageError(f"apply of {workspace.stack} cancelled; nothing was changed")
                outcome = workspace.apply(saved, on_output=_stream(fmt))
            finally:
                saved.unlink(missing_ok=True)
            results.append({"stack": workspace.stack, **_counts(outcome)})
    if fmt == "json":
        click.echo(json.dumps({"stacks": results}, indent=2))
    else:
        for r in results:
            click.echo(f"{r['stack']}: {r['added']} added, {r['changed']} changed, {r['destroyed']} destroyed")
        click.echo("see what runs with 'modelcat status'")
    return 0


def _counts(outcome: Any) -> dict[str, int]:
    return {"added": outcome.added, "changed": outcome.changed, "destroyed": outcome.destroyed}


@click.command()
@CATALOG_OPTION
@ENV_OPTION
@TERRAFORM_OPTION
@AUTO_APPROVE
@command
def destroy(path: Path, envs: tuple[str, ...], terraform: str | None, auto_approve: bool, fmt: str) -> int:
    """Stop every endpoint and router of every applied stack (or of --env): no process, no port left."""
    from catalog.deploy.stacks import existing_stacks, state_root
    from catalog.terraform import Workspace

    stacks = [s for s in existing_stacks(path) if not envs or s.rpartition("-")[0] in envs]
    results = []
    for stack in stacks:
        workspace = Workspace(stack, state_root(path), terraform)
        if not auto_approve:  # show what goes before asking (Terraform lists it anyway when approved)
            planned = workspace.plan(destroy=True)
            if not planned.has_changes:
                continue
            if fmt == "text":
                _echo_plan(_plan_report(stack, planned), planned.text, show_terraform=False)
            if not _confirm(f"destroy everything in {stack}?", auto_approve):
                raise UsageError(f"destroy of {stack} cancelled; nothing was changed")
        outcome = workspace.destroy(on_output=_stream(fmt))
        if outcome.destroyed:
            results.append({"stack": stack, **_counts(outcome)})
    if fmt == "json":
        click.echo(json.dumps({"stacks": results}, indent=2))
    elif not results:
        click.echo("nothing to destroy")
    else:
        for r in results:
            click.echo(f"{r['stack']}: {r['destroyed']} destroyed")
    return 0
