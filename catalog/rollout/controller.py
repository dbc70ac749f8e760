"""The rollout controller: one per binding (a lock), a bounded loop of read, wait, analyse,
decide, commit, apply.

Its state is git's: every pass reads the binding and its rollout record from HEAD
(``record.read_state``), so a controller killed at any point (``kill -9`` included: the lock is a
``flock``, released by the kernel) is started again and goes on from the last committed decision.
It never sleeps past a step's bake: it waits for the due time or the poll interval, whichever is
sooner. With ``apply`` (the local target) a decision that moves the routes is put in force
(``put_in_force``): in the running router at once (``switch.switch_routes``: an abort reaches the
base in well under a second), then by Terraform (auto-approved, the application's environment), so
the catalog, the Terraform state and the routers agree; a rollout it finds already finished (decided
by hand without ``--apply``) is put in force once before it says so. The deciding commands'
``--apply`` goes the same way. For the other targets the commits are what CI applies.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from catalog import filelock
from catalog.deploy.apply import StackPlan, apply_stacks
from catalog.domain.rollouts import routes_text
from catalog.errors import RolloutError, RolloutLocked
from catalog.layout import rollout_lock, state_root
from catalog.rollout.decisions import Decided, Delivery, advance, now_utc
from catalog.rollout.record import RolloutState, environment_target, read_state
from catalog.rollout.step_analysis import StepAnalysis, analyse_step
from catalog.rollout.switch import switch_routes

__all__ = [
    "Ended",
    "RunOptions",
    "apply_decision",
    "command_line",
    "controller_lock",
    "put_in_force",
    "require_local_target",
    "run",
    "switch_binding",
]


def command_line() -> str:
    """This process's command line, for the lock's holder and messages."""
    return " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))


@contextmanager
def controller_lock(catalog_path: Path, application: str, model: str, command: str) -> Iterator[None]:
    """Hold the binding's controller lock while the block runs (its file holds this process's pid
    and ``command``); RolloutLocked, naming the holder's pid and command, when another holds it."""
    where = rollout_lock(state_root(catalog_path), application, model)
    where.parent.mkdir(parents=True, exist_ok=True)
    fd = filelock.try_lock(where)
    if fd is None:
        try:
            pid, _, said = where.read_text(encoding="utf-8").partition("\n")
        except OSError:
            pid, said = "?", ""
        holder = f"pid {pid.strip() or '?'}" + (f": {said.strip()}" if said.strip() else "")
        raise RolloutLocked(f"another controller runs the rollout of {application}/{model} ({holder})")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{command}\n".encode(), 0)
        yield
    finally:
        filelock.unlock(fd, where, remove=True)


class _Quiet:
    """The Watcher of the controller's applies: steps reported through ``say``, nothing asked."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def step(self, text: str) -> None:
        self.say(text)

    def terraform_output(self, stack: str, doing: str) -> Callable[[str], None] | None:
        return None

    def show_plan(self, plan: StackPlan) -> None:
        return None

    def confirm(self, question: str) -> bool:
        return True


def require_local_target(state: RolloutState) -> None:
    """RolloutError unless the application's environment deploys to the local target: ``--apply``
    applies there only (elsewhere the decisions' commits are what CI applies)."""
    environment = state.application.environment
    if environment_target(state.catalog, environment) != "local":
        raise RolloutError(
            f"--apply applies on the local target; {environment} deploys elsewhere: its commits are what CI"
            " applies (run without --apply)"
        )


def switch_binding(state: RolloutState, say: Callable[[str], None]) -> bool:
    """Put the binding's routes (and mirror) of the catalog at the state's commit in force in the
    running router at once (the fast switch, well under a second); whether it did."""
    routes, mirror = state.routes, state.mirror
    result = switch_routes(state.catalog_path, state.application.name, state.binding.model, routes,
                           environment=state.application.environment, mirror=mirror)  # fmt: skip
    if result.switched:
        say(f"switched the router to {routes_text(routes, mirror)} in {result.seconds:.2f} s")
    else:
        say(f"no fast switch ({result.reason}): Terraform applies it")
    return result.switched


def apply_decision(state: RolloutState, say: Callable[[str], None]) -> None:
    """Make the local target run what the catalog now says for the application's environment."""
    environment = state.application.environment
    applied = apply_stacks(state.catalog_path, _Quiet(say), None, [environment], auto_approve=True)
    for a in applied:
        say(f"applied {a.stack}: {a.added} added, {a.changed} changed, {a.destroyed} destroyed")


def put_in_force(state: RolloutState, say: Callable[[str], None]) -> None:
    """What the catalog at the state's commit says, in force on the local target: the binding's
    routes in the running router first (``switch_binding``: an abort reaches the base in well under
    a second), then Terraform, so the catalog, the Terraform state and the routers agree."""
    switch_binding(state, say)
    apply_decision(state, say)


@dataclass(frozen=True)
class RunOptions:
    application: str
    model: str | None
    apply: bool = False
    until: Literal["done", "step"] = "done"
    max_seconds: float | None = None
    poll_seconds: float = 10.0
    target: str = "local"  # where the analysis reads the logs and telemetry
    actor: str = ""
    delivery: Delivery = field(default_factory=Delivery)


@dataclass(frozen=True)
class Ended:
    """How the loop ended: ``why`` (done, step, time, branch) and the rollout's status then."""

    why: Literal["done", "step", "time", "branch"]
    status: str
    decisions: tuple[Decided, ...]


Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def run(
    catalog_path: Path,
    options: RunOptions,
    say: Callable[[str], None],
    *,
    clock: Clock = now_utc,
    sleep: Sleep = time.sleep,
    analyse: Callable[[RolloutState, datetime], StepAnalysis] | None = None,
) -> Ended:
    """The loop; the caller holds the lock (``controller_lock``)."""
    started = time.monotonic()
    made: list[Decided] = []
    model = options.model
    first = True
    analyse = analyse or (lambda state, now: analyse_step(state, now, options.target))
    if options.apply and options.delivery.branch is not None:
        raise RolloutError("--apply with --branch: the merge of the pull request applies the decisions")
    while True:
        state = read_state(catalog_path, options.application, model)
        model = state.binding.model
        if state.record is None:
            raise RolloutError(
                f"no rollout of {state.application.name}/{model}: start one with 'modelcat rollout start'"
            )
        if options.apply:
            require_local_target(state)
        if state.record.finished:
            if options.apply and first:  # decided without --apply: the routers agree before it says so
                put_in_force(state, say)
            say(f"rollout {state.record.rollout_id} is {state.record.status}")
            return Ended("done", state.record.status, tuple(made))
        if options.apply and first:  # a controller killed between a commit and its apply: apply now
            apply_decision(state, say)
        first = False
        decided = advance(state, analyse, options.actor, clock(), options.delivery)
        left = None if options.max_seconds is None else options.max_seconds - (time.monotonic() - started)
        if decided.decision is None:
            wait = options.poll_seconds
            if decided.move.wait_seconds > 0:
                wait = min(wait, decided.move.wait_seconds)
            say(f"waiting {wait:.1f} s: {decided.move.reason}")
        else:
            made.append(decided)
            say(f"{decided.subject} [{(decided.commit or '')[:12]}]")
            if decided.routes_changed:
                if options.delivery.branch is not None:
                    say(f"committed to {options.delivery.branch}: merge the pull request, then run again")
                    return Ended("branch", decided.record.status if decided.record else "running", tuple(made))
                if options.apply:
                    put_in_force(read_state(catalog_path, options.application, model), say)
                if decided.record is not None and decided.record.finished:
                    say(f"rollout {decided.record.rollout_id} is {decided.record.status}")
                    return Ended("done", decided.record.status, tuple(made))
                if options.until == "step":
                    return Ended("step", "running", tuple(made))
            wait = 0.0 if decided.decision.decision != "hold" else options.poll_seconds
        if left is not None and left <= wait:
            say(f"stopping after {options.max_seconds:g} s (--max-seconds): run again to go on from git")
            return Ended("time", state.record.status, tuple(made))
        if wait > 0:
            sleep(wait)
