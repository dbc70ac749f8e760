"""``modelcat rollout start|step|promote|pause|resume|abort|status|run``: a rollout's decisions, each
one commit, and the controller that makes them (``catalog.rollout``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from catalog.cli.common import catalog_option, command, examples
from catalog.cli.deploy_commands import TARGET_OPTION
from catalog.cli.rollout_group import rollout
from catalog.errors import UsageError

__all__ = ["abort", "pause", "promote", "resume", "run", "start", "status", "step"]

MODEL_OPTION = click.option("--model", help="The bound model (default: the application's only one).")
REASON_OPTION = click.option("--reason", help="Why, in the decision's record and commit.")


def _branch_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--pr-description",
        type=click.Path(dir_okay=False, path_type=Path),
        help="With --branch: write the pull request's description (decision, evidence, trailers) here.",
    )(func)
    return click.option(
        "--branch", metavar="BRANCH", help="Commit to this branch (created from HEAD) instead: for a protected main."
    )(func)


def _delivery(branch: str | None, pr_description: Path | None) -> Any:
    from catalog.rollout.decisions import Delivery

    if pr_description is not None and branch is None:
        raise UsageError("--pr-description goes with --branch")
    return Delivery(branch, pr_description)


def _decision_json(decided: Any) -> dict[str, Any]:
    decision = decided.decision
    return {
        "ok": True,
        "committed": decided.commit,
        "subject": decided.subject,
        "rollout_id": decided.record.rollout_id if decided.record else None,
        "status": decided.record.status if decided.record else None,
        "decision": None if decision is None else decision.as_json(),
    }


def _report(decided: Any, delivery: Any) -> None:
    from catalog.domain.rollouts import routes_text

    decision = decided.decision
    where = f" on {delivery.branch}" if delivery.branch else ""
    click.echo(f"{decided.subject} [{(decided.commit or '')[:12]}{where}]")
    click.echo(f"  {decision.reason}")
    click.echo(f"  routes: {routes_text(decision.routes, decision.mirror)}")
    if delivery.pr_description is not None:
        click.echo(f"  wrote the pull request's description to {delivery.pr_description}")


def _state(path: Path, application: str, model: str | None) -> Any:
    from catalog.rollout.record import read_state

    return read_state(path, application, model)


def _refuse_apply_on_branch(apply_: bool, branch: str | None) -> None:
    if apply_ and branch is not None:
        raise UsageError("--apply with --branch: the merge of the pull request applies the decisions")


def _sayer(fmt: str) -> tuple[list[str], Callable[[str], None]]:
    """The lines a command says as it goes (shown at once in text, kept for the JSON document)."""
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if fmt == "text":
            click.echo(line)

    return lines, say


def _decide(
    path: Path, application: str, model: str | None, fmt: str, delivery: Any, name: str, decide: Callable[..., Any],
    apply_: bool = False,
) -> int:  # fmt: skip
    """One decision committed; with ``apply_`` then put in force on the local target, the way the
    controller does (refused, before anything is committed, on a branch or another target)."""
    from catalog.rollout.controller import put_in_force, require_local_target
    from catalog.rollout.decisions import actor_of, now_utc

    _refuse_apply_on_branch(apply_, delivery.branch)
    state = _state(path, application, model)
    if apply_:
        require_local_target(state)
    decided = decide(state, actor_of(name, state.folder), now_utc(), delivery)
    if fmt == "text":
        _report(decided, delivery)
    lines, say = _sayer(fmt)
    if apply_:
        put_in_force(_state(path, state.application.name, state.binding.model), say)
    if fmt == "json":
        click.echo(json.dumps({**_decision_json(decided), **({"log": lines} if apply_ else {})}, indent=2))
    return 0


APPLY_OPTION = click.option(
    "--apply", "apply_", is_flag=True,
    help="Then put it in force on the local target: the router's fast switch, then Terraform.",
)  # fmt: skip


@rollout.command(
    epilog=examples(
        "modelcat rollout start checkout --model fraud-scorer --version 1.4.0",
        "modelcat rollout start checkout --model fraud-scorer --version 1.4.0 --apply",
    )
)
@click.argument("application")
@MODEL_OPTION
@click.option("--version", "version", required=True, help="The version to move the traffic to.")
@APPLY_OPTION
@_branch_options
@catalog_option()
@command
def start(
    application: str, model: str | None, version: str, apply_: bool, branch: str | None, pr_description: Path | None,
    path: Path, fmt: str,
) -> int:  # fmt: skip
    """Begin moving APPLICATION's traffic to a version along the binding's rollout block: the first
    step's weights (or the shadow step, mirrored) as one commit; its routes now are what abort restores."""
    from catalog.rollout import decisions

    delivery = _delivery(branch, pr_description)
    return _decide(path, application, model, fmt, delivery, "start",
                   lambda s, actor, now, d: decisions.start(s, version, actor, now, d), apply_)  # fmt: skip


def _analyse(target: str) -> Callable[..., Any]:
    from catalog.rollout.step_analysis import analyse_step

    return lambda state, now: analyse_step(state, now, target)


@rollout.command(epilog=examples("modelcat rollout step checkout"))
@click.argument("application")
@MODEL_OPTION
@TARGET_OPTION
@APPLY_OPTION
@_branch_options
@catalog_option()
@command
def step(
    application: str, model: str | None, target: str, apply_: bool, branch: str | None, pr_description: Path | None,
    path: Path, fmt: str,
) -> int:  # fmt: skip
    """One step, only when the step in force has baked and the analysis passes (else exit 1, saying why)."""
    from catalog.rollout import decisions

    delivery = _delivery(branch, pr_description)
    return _decide(path, application, model, fmt, delivery, "step",
                   lambda s, actor, now, d: decisions.step(s, _analyse(target), actor, now, d), apply_)  # fmt: skip


@rollout.command(epilog=examples("modelcat rollout promote checkout", "modelcat rollout promote checkout --force"))
@click.argument("application")
@MODEL_OPTION
@click.option("--force", is_flag=True, help="Skip the remaining steps, the bake and the analysis (recorded as forced).")
@TARGET_OPTION
@APPLY_OPTION
@_branch_options
@catalog_option()
@command
def promote(
    application: str, model: str | None, force: bool, target: str, apply_: bool, branch: str | None,
    pr_description: Path | None, path: Path, fmt: str,
) -> int:  # fmt: skip
    """To 100 %: only when the next step is the last, it is due and the analysis passes; --force
    skips what remains and is recorded as such."""
    from catalog.rollout import decisions

    delivery = _delivery(branch, pr_description)
    return _decide(path, application, model, fmt, delivery, "promote",
                   lambda s, actor, now, d: decisions.promote(s, _analyse(target), actor, now, d, force=force),
                   apply_)  # fmt: skip


def _manual(name: str, doc: str, example: tuple[str, ...], *, applies: bool = False) -> click.Command:
    """pause, resume, abort: a decision with a reason; ``applies``: it moves the routes (--apply)."""

    @click.argument("application")
    @MODEL_OPTION
    @REASON_OPTION
    @_branch_options
    @catalog_option()
    @command
    def decide(
        application: str, model: str | None, reason: str | None, branch: str | None, pr_description: Path | None,
        path: Path, fmt: str, apply_: bool = False,
    ) -> int:  # fmt: skip
        from catalog.rollout import decisions

        how = getattr(decisions, name)
        delivery = _delivery(branch, pr_description)
        return _decide(path, application, model, fmt, delivery, name,
                       lambda s, actor, now, d: how(s, actor, now, d, reason), apply_)  # fmt: skip

    decide.__doc__ = doc
    return rollout.command(name, epilog=examples(*example))(APPLY_OPTION(decide) if applies else decide)


pause = _manual("pause", "Stop the controller from deciding (the routes stay as they are) until resume.",
                ("modelcat rollout pause checkout --reason 'holiday freeze'",))  # fmt: skip
resume = _manual("resume", "Let a paused rollout go on: the bake of the step in force starts again.",
                 ("modelcat rollout resume checkout",))  # fmt: skip
abort = _manual(
    "abort",
    "Return the binding to the routes it had when the rollout started (mirror removed); with --apply, in force"
    " in the router at once, then applied.",
    ("modelcat rollout abort checkout --reason 'latency regression'",
     "modelcat rollout abort checkout --apply --reason 'latency regression'"),
    applies=True,
)  # fmt: skip


def _status_text(doc: dict[str, Any]) -> list[str]:
    where = f"{doc['application']}/{doc['model']}"
    shares = ", ".join(f"{r['version']} {r['weight']} %" for r in doc["routes"])
    r = doc["rollout"]
    if r is None:
        lines = [f"{where}: no rollout; routes {shares}"]
    else:
        if r["status"] in ("aborted", "promoted"):  # its stage says so, and where the traffic went
            stage = f"{r['stage']} (plan {r['plan']})"
        else:
            stage = f"{r['status']}, {r['stage']} ({r['percent']} % on {r['version']}; plan {r['plan']})"
        lines = [
            f"{where}: rollout {r['rollout_id']} of {r['version']}: {stage}",
            f"  routes: {shares}" + (f", mirroring {r['mirror']['percent']} % to {r['mirror']['version']}"
                                     if r["mirror"] else ""),
        ]  # fmt: skip
        if r["bake_left_seconds"] is not None:
            lines.append(f"  bake left: {r['bake_left_seconds']:g} s")
        last = r["last_decision"]
        lines.append(f"  last decision: {last['decision']} at {last['time']} by {last['actor']}: {last['reason']}")
        if r["hand_edit"]:
            lines.append(f"  hand edit: {r['hand_edit']}")
    routers = doc["routers"]
    if routers is not None:
        said = {True: "agree", False: "do not agree", None: "not checked"}[routers["agree"]]
        lines.append(f"  routers: {said}: {routers['detail']}")
    return lines


@rollout.command(epilog=examples("modelcat rollout status checkout", "modelcat rollout status checkout --format json"))
@click.argument("application")
@MODEL_OPTION
@catalog_option()
@command
def status(application: str, model: str | None, path: Path, fmt: str) -> int:
    """Where the binding's rollout stands: step k of n, the shares, the bake left, the last decision
    and its reason, and whether the routers serve those routes."""
    from catalog.rollout.decisions import now_utc
    from catalog.rollout.status import rollout_status

    doc = rollout_status(_state(path, application, model), now_utc())
    if fmt == "json":
        click.echo(json.dumps({"ok": True, **doc}, indent=2))
    else:
        for line in _status_text(doc):
            click.echo(line)
    return 0


@rollout.command(
    epilog=examples(
        "modelcat rollout run checkout --apply --until done",
        "modelcat rollout run checkout --until step --max-seconds 900 --poll 30",
    )
)
@click.argument("application")
@MODEL_OPTION
@click.option("--apply", "apply_", is_flag=True,
              help="Put each decision in force on the local target: the router's fast switch, then Terraform.")  # fmt: skip
@click.option("--until", type=click.Choice(["done", "step"]), default="done", show_default=True,
              help="Stop when the rollout is promoted or aborted, or after one change of the routes.")  # fmt: skip
@click.option("--max-seconds", type=click.FloatRange(min=0), help="Stop after this long (run again to go on).")
@click.option("--poll", "poll", type=click.FloatRange(min=0.05), default=10.0, show_default=True,
              help="Seconds between analyses while a step holds.")  # fmt: skip
@TARGET_OPTION
@_branch_options
@catalog_option()
@command
def run(
    application: str, model: str | None, apply_: bool, until: str, max_seconds: float | None, poll: float,
    target: str, branch: str | None, pr_description: Path | None, path: Path, fmt: str,
) -> int:  # fmt: skip
    """The controller: wait for the bake, analyse, decide (step, hold, promote, abort), commit, apply
    with --apply, and again, one binding at a time (a second controller exits 2). Its state is git's:
    killed, it goes on from the last committed decision. Exit 0 when promoted (or stopped by
    --until/--max-seconds), 1 when the rollout ended aborted."""
    from catalog.rollout.controller import RunOptions, command_line, controller_lock
    from catalog.rollout.controller import run as run_loop
    from catalog.rollout.decisions import actor_of

    delivery = _delivery(branch, pr_description)
    _refuse_apply_on_branch(apply_, branch)
    state = _state(path, application, model)
    options = RunOptions(application, state.binding.model, apply_, "step" if until == "step" else "done", max_seconds,
                         poll, target, actor_of("run", state.folder), delivery)  # fmt: skip
    lines, say = _sayer(fmt)
    with controller_lock(path, state.application.name, state.binding.model, command_line()):
        ended = run_loop(path, options, say)
    aborted = ended.status == "aborted"
    if fmt == "json":
        failure = {"code": "rollout_aborted", "message": lines[-1] if lines else "the rollout was aborted",
                   "hint": "'modelcat rollout status' shows the last decision and its reason"}  # fmt: skip
        click.echo(json.dumps({
            "ok": not aborted, **({"error": failure} if aborted else {}), "ended": ended.why, "status": ended.status,
            "decisions": [_decision_json(d) for d in ended.decisions], "log": lines,
        }, indent=2))  # fmt: skip
    return 1 if aborted else 0
