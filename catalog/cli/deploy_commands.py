"""Commands that turn the catalog into running endpoints: synth, plan, apply, destroy."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from catalog.cli.common import catalog_option, command, examples
from catalog.cli.render import Failure, verdict
from catalog.errors import ModelcatError, UsageError
from catalog.synth import TARGETS
from catalog.wording import plural

if TYPE_CHECKING:
    from catalog.deploy.apply import StackPlan

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
NO_STACK = "no stack: no application of the catalog runs (in the environments chosen) and none was applied before"
AUTO_APPROVE = click.option("--auto-approve", is_flag=True, help="Do not ask before changing anything.")


@click.command(epilog=examples("modelcat synth", "modelcat synth --target kubernetes --env production --out k8s"))
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
        # what --target cannot deploy is reported like validate's problems: with lines, exit 1
        catalog = validate_file(path, target, envs or None).raise_for_errors()
        result = synthesize(catalog, path, outdir, target, envs or None)
    if fmt == "json":
        stacks = [
            {"stack": s.name, "environment": s.environment, "target": s.target, "path": str(s.path), "sha256": s.sha256}
            for s in result.stacks
        ]
        click.echo(json.dumps({**verdict(None), "outdir": str(outdir), "stacks": stacks}, indent=2))
    else:
        for s in result.stacks:
            click.echo(f"{s.name}: {s.path} (sha256 {s.sha256[:12]})")
    return 0


def _plan_report(plan: StackPlan) -> dict[str, Any]:
    from catalog.synth.changes import describe_changes

    outcome = plan.outcome
    return {
        "stack": plan.stack,
        "orphan": plan.orphan,  # applied once, no longer declared: apply destroys it
        "has_changes": plan.has_changes,
        "changes": [vars_of(c) for c in describe_changes(outcome.changes)],
        "drift": [vars_of(c) for c in describe_changes(outcome.plan.get("resource_drift") or [])],
        "leftovers": [leftover.as_dict() | {"line": leftover.line()} for leftover in plan.leftovers],
        "plan_file": str(outcome.plan_file) if outcome.plan_file else None,
    }


def vars_of(change: Any) -> dict[str, str]:
    return {"address": change.address, "action": change.action, "subject": change.subject, "detail": change.detail}


def _echo_plan(report: dict[str, Any], terraform_text: str, show_terraform: bool) -> None:
    click.echo(click.style(f"== {report['stack']}", bold=True))
    if report["orphan"]:
        click.echo("  no application of the catalog runs in its environment any more: apply destroys it")
    for drift in report["drift"]:
        click.echo(
            f"  changed outside Terraform: {drift['subject']}" + (f" ({drift['detail']})" if drift["detail"] else "")
        )
    for change in report["changes"]:
        detail = f": {change['detail']}" if change["detail"] else ""
        click.echo(f"  {change['action']:<8} {change['subject']}{detail}")
    for leftover in report["leftovers"]:
        click.echo(f"  {'stop':<8} {leftover['line']}")
    if not report["has_changes"]:
        click.echo("  no changes: what runs matches the catalog")
    if show_terraform and report["changes"]:
        click.echo("  -- Terraform's plan --")
        for line in terraform_text.rstrip().splitlines():
            click.echo(f"  {line}")


def _stream(fmt: str, stack: str, doing: str) -> Callable[[str], None] | None:
    """Where Terraform's output goes: under a header naming the stack and what Terraform does."""
    if fmt != "text":
        return None
    _step(fmt, f"== {stack}: {doing} (Terraform's output follows)", bold=True)
    return lambda line: click.echo(click.style("  | ", dim=True) + line.rstrip("\n"))


def _step(fmt: str, text: str, bold: bool = False) -> None:
    """One line saying what happens next (text output only)."""
    if fmt == "text":
        click.echo(click.style(text, bold=bold))


class _Terminal:
    """The ``Watcher`` of plan, apply and destroy: steps and Terraform's output in text output, the
    plan in model terms, and a question on the terminal."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt

    def step(self, text: str) -> None:
        _step(self.fmt, text)

    def terraform_output(self, stack: str, doing: str) -> Callable[[str], None] | None:
        return _stream(self.fmt, stack, doing)

    def show_plan(self, plan: StackPlan) -> None:
        if self.fmt == "text":
            _echo_plan(_plan_report(plan), plan.outcome.text, show_terraform=False)

    def confirm(self, question: str) -> bool:
        if not sys.stdin.isatty():
            raise UsageError("stdin is not a terminal, so nothing can be confirmed: pass --auto-approve")
        return click.confirm(question, default=False)


@click.command(epilog=examples("modelcat plan", "modelcat plan --env production --out production.tfplan"))
@CATALOG_OPTION
@SYNTH_TARGET_OPTION
@ENV_OPTION
@TERRAFORM_OPTION
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan (one stack).")
@click.option("--terraform-output/--no-terraform-output", default=True, help="Also show Terraform's own plan.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing would change, 2 when something would, 1 on an error (as Terraform's plan).",
)
@command
def plan(
    path: Path,
    target: str | None,
    envs: tuple[str, ...],
    terraform: str | None,
    out: Path | None,
    terraform_output: bool,
    detailed_exitcode: bool,
    fmt: str,
) -> int:
    """Show what apply would change, in model terms and in Terraform's own words.

    Stacks applied earlier that the catalog no longer declares are planned for destruction, and
    processes left running by an interrupted apply are listed to be stopped.
    """
    from catalog.deploy.apply import plan_stacks

    try:
        reports = []
        for stack_plan in plan_stacks(path, target, envs or None, terraform, out):
            report = _plan_report(stack_plan)
            reports.append(report)
            if fmt == "text":
                _echo_plan(report, stack_plan.outcome.text, terraform_output)
    except ModelcatError as e:
        if detailed_exitcode and e.exit_code != 130:
            e.exit_code = 1  # Terraform's contract: 2 means changes, so any error is 1
        raise
    pending = [r["stack"] for r in reports if r["has_changes"]]
    code = 2 if detailed_exitcode and pending else 0
    if fmt == "json":
        failure = Failure(
            "changes_pending", f"apply would change {', '.join(pending)}", "'modelcat apply' makes them"
        )  # --detailed-exitcode's 2 says so as "ok": false, as every non-zero exit does
        click.echo(json.dumps({**verdict(failure if code else None), "stacks": reports}, indent=2))
    elif not reports:
        click.echo(NO_STACK)
    elif out is not None:
        click.echo(f"saved the plan to {out}: apply it with 'modelcat apply {out}'")
    return code


@click.command(
    epilog=examples(
        "modelcat apply --auto-approve", "modelcat apply production.tfplan   # a plan saved by modelcat plan --out"
    )
)
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
    confirmed; with it, Terraform plans and applies in one go and streams what it does. A stack
    applied earlier that the catalog no longer declares is destroyed (after the same question).
    """
    from catalog.deploy.apply import apply_saved_plan, apply_stacks

    watcher = _Terminal(fmt)
    if plan_file is not None:
        applied = [apply_saved_plan(path, plan_file, watcher, terraform)]
    else:
        applied = apply_stacks(path, watcher, target, envs or None, terraform, auto_approve)
    results = [asdict(a) for a in applied]
    if fmt == "json":
        click.echo(json.dumps({**verdict(None), "stacks": results}, indent=2))
    elif not results:
        click.echo(NO_STACK)
    else:
        for r in results:
            left = plural(r["stopped"], "process", "processes")
            stopped = f"; stopped {left} an interrupted run left behind" if r["stopped"] else ""
            click.echo(f"{r['stack']}: {r['added']} added, {r['changed']} changed, {r['destroyed']} destroyed{stopped}")
        click.echo("see what runs with 'modelcat status'")
    return 0


@click.command(epilog=examples("modelcat destroy --auto-approve", "modelcat destroy --env staging"))
@CATALOG_OPTION
@ENV_OPTION
@TERRAFORM_OPTION
@AUTO_APPROVE
@command
def destroy(path: Path, envs: tuple[str, ...], terraform: str | None, auto_approve: bool, fmt: str) -> int:
    """Stop every endpoint and router of every applied stack (or of --env): no process, no port left.

    Every process the run records list is stopped, those Terraform lost track of included (an
    apply stopped by a second Ctrl-C can leave some)."""
    from catalog.deploy.apply import destroy_stacks

    results = [asdict(a) for a in destroy_stacks(path, _Terminal(fmt), envs, terraform, auto_approve)]
    if fmt == "json":
        click.echo(json.dumps({**verdict(None), "stacks": results}, indent=2))
    elif not results:
        click.echo("nothing to destroy")
    else:
        for r in results:
            left = plural(r["stopped"], "process", "processes")
            stopped = f"; stopped {left} Terraform had lost track of" if r["stopped"] else ""
            click.echo(f"{r['stack']}: {r['destroyed']} destroyed{stopped}")
    return 0
