"""A rollout's decisions, each one commit: start, step, promote, pause, resume, abort, and the
controller's own (``advance``: the rule of ``catalog.domain.rollouts.decide_next`` on an analysis).

Each decision reads the binding's state from a commit (``record.read_state``), refuses when the
binding was edited by hand since the rollout's last decision (``record.hand_edit``), and writes ONE
commit with ``gitwrite.commit_files``: the binding's new routes (and mirror) in models.yaml, edited
with ``editing.routes_edited``, and the rollout's record with the new decision; its subject says what
was decided and its trailers (``Rollout-Id``, ``Step``, ``Decision``, ``Evidence``, ``Decided-By``)
let ``git log`` tell the story. ``expected_parent`` is the commit the state was read from: a
decision made on a state that moved since is refused rather than written over it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog.domain.rollouts import (
    DecisionRecord,
    Move,
    RolloutRecord,
    decide_next,
    evidence_digest,
    first_step,
    policy_digest,
    rollout_id,
    routes_at,
    routes_text,
    share_of,
)
from catalog.editing import LockedCatalog, locked_catalog, routes_edited
from catalog.errors import RolloutError
from catalog.files import atomic_write
from catalog.gitio import repository_root
from catalog.gitwrite import author_identity, commit_files, head_commit, message_with_trailers
from catalog.rollout.record import RolloutState, hand_edit, record_name
from catalog.rollout.step_analysis import StepAnalysis

__all__ = [
    "Decided",
    "Delivery",
    "abort",
    "actor_of",
    "advance",
    "now_utc",
    "pause",
    "promote",
    "resume",
    "start",
    "step",
]

Analyse = Callable[[RolloutState, datetime], StepAnalysis]


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def actor_of(command: str, folder: Path) -> str:
    """Who decides: ``modelcat rollout run (pid 4242 on host)`` for the controller, else the git
    identity of the person who ran ``command``."""
    if command == "run":
        return f"modelcat rollout run (pid {os.getpid()} on {socket.gethostname()})"
    return f"modelcat rollout {command} ({author_identity(folder)})"


@dataclass(frozen=True)
class Delivery:
    """Where a decision's commit goes: the current branch, or ``branch`` (working tree untouched)
    with a pull request description written to ``pr_description``."""

    branch: str | None = None
    pr_description: Path | None = None


@dataclass(frozen=True)
class Decided:
    """A decision made (``commit`` None: not committed, a hold repeating the last one) or, with
    ``decision`` None, nothing to decide yet (``move`` says why and how long to wait)."""

    move: Move
    record: RolloutRecord | None = None
    decision: DecisionRecord | None = None
    commit: str | None = None
    subject: str = ""
    analysis: StepAnalysis | None = None

    @property
    def routes_changed(self) -> bool:
        return self.decision is not None and self.decision.decision in ("start", "step", "promote", "abort")


def _n(state: RolloutState) -> int:
    return len(state.policy.steps)


def _what(record: RolloutRecord, decision: DecisionRecord, steps: int) -> str:
    kind, k = decision.decision, decision.step
    where = f"step {k} of {steps}" if k else "the shadow step"
    percent = share_of(decision.routes, record.version)
    if kind == "start":
        if decision.mirror is not None:
            return f"start: the shadow step (mirroring {decision.mirror[1]} %)"
        return f"start: step {k} of {steps} ({percent} %)"
    if kind == "step":
        return f"step {k} of {steps} ({percent} %)"
    if kind == "promote":
        return "promote (100 %)" + (", forced" if decision.forced else "")
    if kind == "abort":
        return f"abort: back to {routes_text(decision.routes)}"
    if kind == "hold":
        return f"hold at {where}: {decision.reason}"
    return f"{kind} at {where}"


def _message(record: RolloutRecord, decision: DecisionRecord, steps: int, body: str) -> tuple[str, str]:
    subject = f"rollout {record.application}/{record.model} {record.version}: {_what(record, decision, steps)}"
    index = len(record.decisions) - 1
    trailers = [
        ("Rollout-Id", record.rollout_id),
        ("Step", f"{decision.step}/{steps}"),
        ("Decision", decision.decision),
        ("Evidence", f"{record_name(record.rollout_id)}#{index} {evidence_digest(decision.evidence)}"),
        ("Decided-By", decision.actor),
    ]
    text = "\n".join(line for line in (decision.reason, body) if line)
    return subject, message_with_trailers(subject, text, trailers)


def _relative(top: Path, path: Path) -> str:
    return path.resolve().relative_to(top).as_posix()


def _commit(state: RolloutState, record: RolloutRecord, steps: int, body: str, delivery: Delivery) -> tuple[str, str]:
    """Commit ``record`` (its last decision new) and the binding's routes it leaves; (sha, subject)."""
    decision = record.last
    folder = state.folder
    top = repository_root(folder)
    if top is None:
        raise RolloutError(f"{state.catalog_path} is not in a git repository: a rollout's decisions are commits")
    record_path = _relative(top, folder / record_name(record.rollout_id))
    catalog_path = _relative(top, state.catalog_path)
    subject, message = _message(record, decision, steps, body)
    moved = (decision.routes, decision.mirror) != (state.routes, state.mirror)
    record_bytes = record.dumps().encode("utf-8")
    if delivery.branch is not None:
        tip = head_commit(top, f"refs/heads/{delivery.branch}")
        if tip is not None and tip != state.commit:
            raise RolloutError(
                f"branch {delivery.branch} exists at {tip[:12]}, not at {state.commit[:12]} where the rollout was"
                " read: choose another --branch (or delete that one)"
            )
        files = {record_path: record_bytes}
        if moved:
            text, _ = routes_edited(LockedCatalog(state.catalog_path, state.catalog_bytes), record.application,
                                    record.model, decision.routes, decision.mirror)  # fmt: skip
            files[catalog_path] = text.encode("utf-8")
        sha = commit_files(top, files, message, branch=delivery.branch, expected_parent=state.commit)
        if delivery.pr_description is not None:
            atomic_write(delivery.pr_description, _pr_description(record, subject, message, steps).encode("utf-8"))
        return sha, subject
    with locked_catalog(state.catalog_path) as catalog:
        if catalog.original != state.catalog_bytes:
            raise RolloutError(
                f"{state.catalog_path} has changes that are not committed: commit or discard them first (or decide"
                " on another branch with --branch); nothing was written"
            )
        files = {record_path: record_bytes}
        if moved:
            text, _ = routes_edited(catalog, record.application, record.model, decision.routes, decision.mirror)
            files[catalog_path] = text.encode("utf-8")
        sha = commit_files(top, files, message, expected_parent=state.commit)
    return sha, subject


def _pr_description(record: RolloutRecord, subject: str, message: str, steps: int) -> str:
    decision = record.last
    evidence = decision.evidence or {}
    lines = [f"# {subject}", "", decision.reason, ""]
    lines += [f"- routes after it: {routes_text(decision.routes, decision.mirror)}"]
    lines += [f"- routes when the rollout started: {routes_text(record.base)}"]
    lines += [f"- step {decision.step} of {steps}; decided by {decision.actor} at {decision.time}"]
    if evidence:
        lines += ["", "## Evidence", ""]
        for version in evidence.get("versions", []):
            reasons = "; ".join(version.get("reasons") or []) or "no reasons"
            lines.append(f"- {version.get('version')} ({version.get('role')}): {version.get('verdict')}: {reasons}")
        lines.append(f"- window: {evidence.get('since')} to {evidence.get('until')}")
    lines += ["", "## Trailers", "", "```", *message.rstrip().split("\n\n")[-1].splitlines(), "```", ""]
    lines += ["Merge this pull request to apply the decision, then run `modelcat rollout run` again.", ""]
    return "\n".join(lines)


def _record_decision(
    state: RolloutState,
    record: RolloutRecord,
    move: Move,
    actor: str,
    now: datetime,
    delivery: Delivery,
    *,
    analysis: StepAnalysis | None = None,
    forced: bool = False,
    inputs: Mapping[str, Any] | None = None,
    body: str = "",
) -> Decided:
    assert move.decision is not None
    policy = {"rollout": state.policy.as_json(), "analysis": analysis.plan if analysis else None}
    decision = DecisionRecord(
        decision=move.decision,
        time=_time(now),
        actor=actor,
        step=move.step,
        routes=move.routes,
        reason=move.reason,
        mirror=move.mirror,
        forced=forced,
        inputs={**move.inputs, **(inputs or {})},
        policy=policy,
        policy_digest=policy_digest(policy),
        evidence=analysis.evidence if analysis else None,
    )
    after = record.with_decision(decision)
    if analysis is not None and analysis.detail:
        body = "\n".join(line for line in (body, analysis.detail) if line)
    sha, subject = _commit(state, after, _n(state), body, delivery)
    return Decided(move, after, decision, sha, subject, analysis)


def _running(state: RolloutState) -> RolloutRecord:
    """The rollout under way, once no hand edit stands in its way; RolloutError when there is none."""
    conflict = hand_edit(state)
    if conflict is not None:
        raise conflict
    record = state.record
    where = f"{state.application.name}/{state.binding.model}"
    if record is None:
        raise RolloutError(f"no rollout of {where}: start one with 'modelcat rollout start'")
    if record.finished:
        raise RolloutError(f"the rollout of {where} to {record.version} is {record.status}: start another one")
    return record


def start(state: RolloutState, version: str, actor: str, now: datetime, delivery: Delivery) -> Decided:
    """Begin moving the binding's traffic to ``version``: its routes now are the base, the first
    step's weights (or the shadow step, mirrored) are in force after it. A binding whose rollout
    block is all_at_once moves everything at once: the start is a promote."""
    where = f"{state.application.name}/{state.binding.model}"
    if state.running and state.record is not None:
        record = state.record
        raise RolloutError(
            f"rollout {record.rollout_id} of {where} to {record.version} is {record.status} (step"
            f" {record.last.step} of {_n(state)}): abort it or let it finish first"
        )
    model = next(m for m in state.catalog.models if m.name == state.binding.model)
    versions = [v.version for v in model.versions]
    if version not in versions:
        raise RolloutError(f"{version} is not a version of {model.name} (versions: {', '.join(versions)})")
    if not state.binding.enabled:
        raise RolloutError(f"{where} is disabled (enabled: false): it routes nothing to roll out")
    base, policy = state.routes, state.policy
    if share_of(base, version) >= 100:
        raise RolloutError(f"{where} already sends all its traffic to {version}")
    record = RolloutRecord(
        rollout_id(state.application.name, state.binding.model, version, now),
        state.application.name, state.binding.model, version, state.application.environment, base,
    )  # fmt: skip
    inputs = {"base": [list(r) for r in base], "version": version, "strategy_steps": list(policy.steps)}
    if policy.shadow_percent is not None:
        routes = routes_at(base, version, 0)  # the mirror goes to a weight-0 route: deployed, answering no one
        reason = f"the shadow step: {policy.shadow_percent} % of requests mirrored to {version}, answers discarded"
        move = Move("start", reason, 0, routes, (version, policy.shadow_percent))
    else:
        k = first_step(base, version, policy.steps)
        percent = policy.steps[k - 1]
        if percent >= 100:
            why = (
                "the rollout block moves everything in one step (all_at_once)"
                if len(policy.steps) == 1
                else f"{version} already has {share_of(base, version)} %, the share of every step before the last"
            )
            move = Move("promote", f"{why}: start promotes at once to 100 %", k, ((version, 100),))
        else:
            move = Move("start", f"step {k} of {len(policy.steps)}: {percent} % to {version}", k,
                        routes_at(base, version, percent))  # fmt: skip
    return _record_decision(state, record, move, actor, now, delivery, inputs=inputs)


def _due(state: RolloutState, record: RolloutRecord, now: datetime) -> Move | None:
    """None when the step in force is due for a decision; else the rule's move (baking, paused)."""
    move = decide_next(record, state.policy, None, _time(now))
    return move if move.decision is None else None


def advance(
    state: RolloutState, analyse: Analyse, actor: str, now: datetime, delivery: Delivery, *, commit_hold: bool = True
) -> Decided:
    """The controller's decision: nothing while the step bakes (or the rollout is paused), else the
    rule on the analysis: step, promote, abort, or hold (committed only when the last decision was
    not a hold with the same reason, and only with ``commit_hold``)."""
    record = _running(state)
    waiting = _due(state, record, now)
    if waiting is not None:
        return Decided(waiting, record)
    analysis = analyse(state, now)
    move = decide_next(record, state.policy, analysis.verdict, _time(now))
    if move.decision is None:
        return Decided(move, record, analysis=analysis)
    if move.decision == "hold":
        move = replace(move, reason=analysis.hold_reason(move.reason))
        last = record.last
        if not commit_hold or (last.decision == "hold" and last.reason == move.reason):
            return Decided(move, record, analysis=analysis)
    return _record_decision(state, record, move, actor, now, delivery, analysis=analysis)


def step(state: RolloutState, analyse: Analyse, actor: str, now: datetime, delivery: Delivery) -> Decided:
    """One step, only when the bake has passed and the analysis passes; RolloutError saying why not."""
    record = _running(state)
    return _manual_move(state, record, analyse, actor, now, delivery, ("step", "promote"))


def promote(
    state: RolloutState, analyse: Analyse, actor: str, now: datetime, delivery: Delivery, *, force: bool = False
) -> Decided:
    """To 100 %: only when the next step is the last, it is due and the analysis passes; ``force``
    skips the remaining steps, the bake and the analysis, and is recorded as such."""
    record = _running(state)
    if force:
        n = _n(state)
        skipped = [p for p in state.policy.steps[record.last.step : n - 1]]
        reason = f"forced by hand: steps skipped {skipped or 'none'}, bake and analysis not waited for"
        move = Move("promote", reason, n, ((record.version, 100),), None, {"skipped_steps": skipped})
        return _record_decision(state, record, move, actor, now, delivery, forced=True)
    return _manual_move(state, record, analyse, actor, now, delivery, ("promote",))


def _manual_move(
    state: RolloutState,
    record: RolloutRecord,
    analyse: Analyse,
    actor: str,
    now: datetime,
    delivery: Delivery,
    allowed: tuple[str, ...],
) -> Decided:
    waiting = _due(state, record, now)
    if waiting is not None:
        raise RolloutError(f"not due: {waiting.reason}")
    if "step" not in allowed:
        nxt = min(record.last.step + 1, _n(state))
        if state.policy.steps[nxt - 1] < 100:
            raise RolloutError(
                f"the next step is {nxt} of {_n(state)} ({state.policy.steps[nxt - 1]} %), not the last: run"
                " 'modelcat rollout step', or 'promote --force' to skip the remaining steps"
            )
    analysis = analyse(state, now)
    move = decide_next(record, state.policy, analysis.verdict, _time(now))
    if move.decision not in allowed:
        said = analysis.hold_reason(move.reason) if move.decision == "hold" else move.reason
        if analysis.verdict is not None:
            said = f"{said} ({analysis.reason})"
        advice = {"abort": ": run 'modelcat rollout abort' (the controller would abort)"}.get(move.decision or "", "")
        raise RolloutError(f"no {allowed[0]}: {said}{advice}")
    return _record_decision(state, record, move, actor, now, delivery, analysis=analysis)


def pause(state: RolloutState, actor: str, now: datetime, delivery: Delivery, reason: str | None) -> Decided:
    record = _running(state)
    if record.status == "paused":
        raise RolloutError(f"rollout {record.rollout_id} is already paused")
    last = record.last
    move = Move("pause", reason or "paused by hand", last.step, record.routes, last.mirror)
    return _record_decision(state, record, move, actor, now, delivery)


def resume(state: RolloutState, actor: str, now: datetime, delivery: Delivery, reason: str | None) -> Decided:
    record = _running(state)
    if record.status != "paused":
        raise RolloutError(f"rollout {record.rollout_id} is not paused (it is {record.status})")
    last = record.last
    move = Move("resume", reason or "resumed by hand: the bake starts again", last.step, record.routes, last.mirror)
    return _record_decision(state, record, move, actor, now, delivery)


def abort(state: RolloutState, actor: str, now: datetime, delivery: Delivery, reason: str | None) -> Decided:
    """The base routes exactly, the mirror removed."""
    record = _running(state)
    move = Move("abort", reason or "aborted by hand", 0, record.base, None)
    return _record_decision(state, record, move, actor, now, delivery)
