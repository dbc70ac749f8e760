"""``modelcat rollout history`` and ``modelcat rollout replay`` (on the ``rollout`` group), and the
top-level ``modelcat rollback``: what was rolled out when, re-deriving the decisions, going back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from catalog.cli.common import catalog_option, command, examples
from catalog.cli.render import Failure, verdict
from catalog.cli.rollout_group import rollout
from catalog.domain.rollouts import routes_text
from catalog.wording import plural

if TYPE_CHECKING:
    from catalog.rollout.history import BindingHistory, Period
    from catalog.rollout.replay import Replay
    from catalog.rolloutlog import CommitDecision

__all__ = ["history", "history_text", "replay", "replay_text", "rollback"]


def _shares(routes: tuple[tuple[str, int], ...], mirror: tuple[str, int] | None) -> str:
    text = routes_text(routes) or "not bound"
    return text + (f"; mirror {mirror[1]} % to {mirror[0]}" if mirror else "")


def _decision_lines(d: CommitDecision, indent: str) -> list[str]:
    sha = d.commit.sha[:12]
    if d.kind == "hand":
        return [f"{indent}by hand, {d.decided_by} ({sha}): {d.reason}"]
    if d.kind == "rollback":
        return [f"{indent}rollback to {d.rollback_to} by {d.decided_by} ({sha}): {d.reason}"]
    lines = [f"{indent}{d.decision} by {d.decided_by} ({sha}), rollout {d.rollout_id} step {d.step}: {d.reason}"]
    if d.evidence is not None:
        lines.append(f"{indent}  evidence: {d.evidence.text()} [{(d.evidence_ref or '').split()[0]}]")
    elif d.problem is not None:
        lines.append(f"{indent}  evidence unreadable: {d.problem}")
    return lines


def _period_lines(p: Period) -> list[str]:
    lines = [f"{p.since} → {p.until or 'now'}  {_shares(p.routes, p.mirror)}"]
    lines += _decision_lines(p.change, "    ")
    for event in p.events:
        lines.append(f"    {event.commit.time}:")
        lines += _decision_lines(event, "      ")
    return lines


def history_text(histories: list[BindingHistory], notes: list[str]) -> list[str]:
    """The periods of each binding, oldest first, each with who or what set it and why."""
    out = []
    for h in histories:
        out.append(f"{h.application}/{h.model}: {plural(len(h.periods), 'period')}")
        for period in h.periods:
            out += _period_lines(period)
    return out + [f"note: {n}" for n in notes]


@rollout.command(
    epilog=examples(
        "modelcat rollout history checkout",
        "modelcat rollout history checkout --model fraud-scorer --format json",
    )
)
@click.argument("application")
@click.option("--model", help="The binding's model (default: every binding of the application).")
@catalog_option()
@command
def history(application: str, model: str | None, path: Path, fmt: str) -> int:
    """Which version had which share of APPLICATION's traffic from when to when, who or what
    decided each change (a rollout's decision, a rollback, a commit by hand) and why, with the
    evidence; read from git (the current branch's commits of the catalog and its rollouts)."""
    from catalog.rollout.history import binding_history, history_json

    histories, notes = binding_history(path, application, model)
    if fmt == "json":
        click.echo(json.dumps(history_json(path, application, histories, notes), indent=2))
    else:
        for line in history_text(histories, notes):
            click.echo(line)
    return 0


def replay_text(result: Replay) -> list[str]:
    r = result.record
    count = plural(len(r.decisions), "decision")
    out = [f"rollout {r.rollout_id}: {r.application}/{r.model} to {r.version}, {r.status}; {count}"]
    for d in result.decisions:
        head = f"#{d.index} {d.recorded.time} {d.recorded.decision} by {d.recorded.actor}"
        if d.by_person:
            out.append(f"{head}: decided by a person{' (forced)' if d.recorded.forced else ''}, not re-derived")
            continue
        verdict = f"verdict {d.verdict}" if d.verdict is not None else "no verdict"
        if d.verdict_source == "document":
            verdict += ", read from its analysis document (no observations to decide again)"
        if d.differences:
            out.append(f"{head}: DOES NOT REPRODUCE ({verdict})")
            out += [f"    {why}" for why in d.differences]
        else:
            out.append(f"{head}: reproduced ({verdict})")
        if d.today_differences and d.today is not None:
            out.append(f"    today: {d.today.decision or 'nothing yet'} ({d.today.reason}), because")
            out += [f"      {why}" for why in d.today_differences[1:] or d.today_differences]
    ruled = [d for d in result.decisions if not d.by_person]
    differ = [d for d in result.decisions if d.today_differences]
    out.append(
        f"replay: {len(ruled) - len(result.failed)} of {len(ruled)} re-derived decisions reproduce; "
        f"{len(differ)} would differ under today's policy"
    )
    return out + [f"note: {n}" for n in result.notes]


@rollout.command(epilog=examples("modelcat rollout replay checkout.fraud-scorer.1.4.0.20261206T201000Z"))
@click.argument("rollout_id", metavar="ROLLOUT-ID")
@catalog_option()
@command
def replay(rollout_id: str, path: Path, fmt: str) -> int:
    """Re-derive every decision of the rollout ROLLOUT-ID (its file rollouts/ROLLOUT-ID.json at
    HEAD) from its recorded evidence and the policy of the time, and show those that would differ
    under today's policy. Exit 0: every recorded decision reproduces; 1: one does not (named)."""
    from catalog.rollout.replay import replay as run_replay

    result = run_replay(path, rollout_id)
    if fmt == "json":
        document = result.as_json()
        if result.failed:
            failure = Failure(
                "replay_differs",
                f"replay: {len(result.failed)} recorded decision(s) of {rollout_id} do not reproduce",
                "each one is listed with why: its evidence, its policy or the rule gives another decision",
            )
            document = {**document, **verdict(failure)}
        click.echo(json.dumps(document, indent=2))
    else:
        for line in replay_text(result):
            click.echo(line)
        for d in result.failed:
            click.echo(
                f"error: decision #{d.index} ({d.recorded.decision} at {d.recorded.time}) does not reproduce: "
                + "; ".join(d.differences),
                err=True,
            )
    return result.exit_code


@click.command(
    epilog=examples(
        "modelcat rollback checkout --model fraud-scorer --to HEAD~3",
        "modelcat rollback checkout --model fraud-scorer --to v2026.11 --format json",
    )
)
@click.argument("application")
@click.option("--model", required=True, help="The binding's model.")
@click.option("--to", "ref", required=True, metavar="GITREF", help="The revision whose routes to restore.")
@click.option(
    "--policies",
    "policies_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Rules folder (default: policies/ beside the catalog).",
)
@catalog_option()
@command
def rollback(application: str, model: str, ref: str, policies_dir: Path | None, path: Path, fmt: str) -> int:
    """Restore APPLICATION's routes (and mirror) for MODEL as they were at GITREF, as one commit
    on the current branch, through the same review rules as a pull request. Refused, with nothing
    written, when a version they name has been removed since, while a rollout of the binding is
    under way, or when review would block the change."""
    from datetime import UTC, datetime

    from catalog.rollout.rollback import rollback as run_rollback

    policies = policies_dir if policies_dir is not None else path.parent / "policies"
    done = run_rollback(path, application, model, ref, policies_dir=policies, now=datetime.now(UTC))
    if fmt == "json":
        click.echo(json.dumps({**verdict(None), **done.as_json()}, indent=2))
        return 0
    before = ", ".join(f"{v}={w}%" for v, w in done.before[0])
    after = ", ".join(f"{v}={w}%" for v, w in done.after[0])
    if done.commit is None:
        click.echo(f"{application}/{model} already has the routes of {ref} ({after}): nothing to commit")
    else:
        click.echo(f"{application}/{model}: {before} -> {after} (the routes of {ref}, {done.target[:12]})")
        click.echo(f"committed {done.commit[:12]}: rollback {application}/{model} to {ref}")
    return 0
