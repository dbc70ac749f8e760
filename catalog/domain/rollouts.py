"""A rollout as git records it, and the rule that decides its next move. Pure: no IO, no clock.

A rollout moves one binding's traffic to one version in the steps of its effective rollout block
(``catalog.domain.effective.EffectiveRollout``). Its record is a committed JSON file,
``rollouts/<rollout id>.json`` beside the catalog (schema ``modelcat/rollout-v1``): the binding's
routes when it started (``base``, which abort restores), its steps, and every decision in order,
each with the routes it left in force, the evidence it read and the policy it applied. Every
decision is one commit touching only that file and the binding's routes, with the trailers
``Rollout-Id``, ``Step``, ``Decision`` and ``Evidence``; ``git log`` alone tells the story.

``decide_next`` is the controller's rule: given the record, the policy in force, the analysis
verdict and the time, what to do now. ``rollout replay`` calls it again on each recorded input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "DECISIONS",
    "ROLLOUTS_FOLDER",
    "ROLLOUT_SCHEMA",
    "TERMINAL",
    "TRAILERS",
    "DecisionKind",
    "DecisionRecord",
    "Move",
    "RolloutPolicy",
    "RolloutRecord",
    "Routes",
    "decide_next",
    "evidence_digest",
    "first_step",
    "policy_digest",
    "rollout_id",
    "routes_at",
    "routes_text",
    "share_of",
]

ROLLOUT_SCHEMA = "modelcat/rollout-v1"
ROLLOUTS_FOLDER = "rollouts"  # beside the catalog file: rollouts/<rollout id>.json
TRAILERS = ("Rollout-Id", "Step", "Decision", "Evidence")

DecisionKind = Literal["start", "step", "hold", "pause", "resume", "promote", "abort"]
DECISIONS: tuple[str, ...] = ("start", "step", "hold", "pause", "resume", "promote", "abort")
TERMINAL = frozenset({"promote", "abort"})

Routes = tuple[tuple[str, int], ...]  # (version, weight) in the binding's order
Verdict = Literal["promote", "hold", "rollback"]


def rollout_id(application: str, model: str, version: str, started: datetime) -> str:
    """``checkout.fraud-scorer.1.4.0.20261206T201000Z``: unique per binding and second, a file name."""
    return f"{application}.{model}.{version}.{started.strftime('%Y%m%dT%H%M%SZ')}"


@dataclass(frozen=True)
class RolloutPolicy:
    """What the rule applies: the effective rollout of the binding when the decision was made."""

    steps: tuple[int, ...]  # cumulative percent on the new version after each step, ending at 100
    interval_seconds: int  # bake: how long a step runs before it is analysed
    progress_deadline_seconds: int  # how long a due step may hold before the rollout aborts
    shadow_percent: int | None = None  # a shadow step first, mirroring this percent of requests

    def as_json(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "interval_seconds": self.interval_seconds,
            "progress_deadline_seconds": self.progress_deadline_seconds,
            "shadow_percent": self.shadow_percent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutPolicy:
        return cls(
            tuple(int(s) for s in data["steps"]),
            int(data["interval_seconds"]),
            int(data["progress_deadline_seconds"]),
            None if data.get("shadow_percent") is None else int(data["shadow_percent"]),
        )


def policy_digest(policy: Mapping[str, Any]) -> str:
    """sha256 of a policy's canonical JSON (sorted keys, no spaces): which rules a decision applied."""
    text = json.dumps(policy, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def evidence_digest(evidence: Mapping[str, Any] | None) -> str:
    """``sha256:<hex>`` of the evidence's canonical JSON (``sha256:none`` without one): the commit's
    ``Evidence`` trailer, which ``rollout replay`` checks the file against."""
    if evidence is None:
        return "sha256:none"
    text = json.dumps(evidence, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class DecisionRecord:
    """One decision of a rollout, as committed."""

    decision: DecisionKind
    time: str  # RFC 3339, UTC: when it was decided
    actor: str  # who or what decided: "modelcat rollout run (pid 123 on host)", "alice <a@x> (rollout abort)"
    step: int  # the step in force after it: 0 is the shadow step (or none yet), k the k-th of ``steps``
    routes: Routes  # the binding's routes after it
    reason: str
    mirror: tuple[str, int] | None = None  # (version, percent) mirrored after it (the shadow step)
    forced: bool = False  # promote --force: steps, bake and analysis skipped
    inputs: Mapping[str, Any] = field(default_factory=dict)  # what the rule read (see ``decide_next``)
    policy: Mapping[str, Any] = field(default_factory=dict)  # RolloutPolicy.as_json() and the analysis plan
    policy_digest: str = ""
    evidence: Mapping[str, Any] | None = None  # the analysis decision document it acted on

    def as_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "time": self.time,
            "actor": self.actor,
            "step": self.step,
            "routes": [{"version": v, "weight": w} for v, w in self.routes],
            "mirror": None if self.mirror is None else {"version": self.mirror[0], "percent": self.mirror[1]},
            "reason": self.reason,
            "forced": self.forced,
            "inputs": dict(self.inputs),
            "policy": dict(self.policy),
            "policy_digest": self.policy_digest,
            "evidence": self.evidence,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DecisionRecord:
        mirror = data.get("mirror")
        return cls(
            decision=data["decision"],
            time=data["time"],
            actor=data["actor"],
            step=int(data["step"]),
            routes=_routes(data["routes"]),
            reason=data["reason"],
            mirror=None if not mirror else (str(mirror["version"]), int(mirror["percent"])),
            forced=bool(data.get("forced", False)),
            inputs=dict(data.get("inputs") or {}),
            policy=dict(data.get("policy") or {}),
            policy_digest=str(data.get("policy_digest", "")),
            evidence=data.get("evidence"),
        )


def _routes(items: Sequence[Mapping[str, Any]]) -> Routes:
    return tuple((str(r["version"]), int(r["weight"])) for r in items)


@dataclass(frozen=True)
class RolloutRecord:
    """A rollout's committed file: what it moves, from which routes, and every decision so far."""

    rollout_id: str
    application: str
    model: str
    version: str
    environment: str
    base: Routes  # the binding's routes when it started: abort restores them exactly
    decisions: tuple[DecisionRecord, ...] = ()

    @property
    def last(self) -> DecisionRecord:
        return self.decisions[-1]

    @property
    def status(self) -> Literal["running", "paused", "promoted", "aborted"]:
        kinds = [d.decision for d in self.decisions if d.decision != "hold"]
        if "promote" in kinds:
            return "promoted"
        if "abort" in kinds:
            return "aborted"
        return "paused" if kinds and kinds[-1] == "pause" else "running"

    @property
    def finished(self) -> bool:
        return self.status in ("promoted", "aborted")

    @property
    def routes(self) -> Routes:
        """The routes the last decision left in force (the base before any decision)."""
        return self.last.routes if self.decisions else self.base

    @property
    def step_started(self) -> str | None:
        """When the step in force began: the last decision that changed the routes or the mirror."""
        moved = [d for d in self.decisions if d.decision in ("start", "step", "promote", "abort")]
        return moved[-1].time if moved else None

    @property
    def bake_started(self) -> str | None:
        """When the bake of the step in force began: its start, or the last ``resume`` after it (a
        paused rollout's time does not count towards the bake or the progress deadline)."""
        moved = [d for d in self.decisions if d.decision in ("start", "step", "promote", "abort", "resume")]
        return moved[-1].time if moved else None

    def with_decision(self, decision: DecisionRecord) -> RolloutRecord:
        return RolloutRecord(
            self.rollout_id, self.application, self.model, self.version, self.environment, self.base,
            (*self.decisions, decision),
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": ROLLOUT_SCHEMA,
            "rollout_id": self.rollout_id,
            "application": self.application,
            "model": self.model,
            "version": self.version,
            "environment": self.environment,
            "base": [{"version": v, "weight": w} for v, w in self.base],
            "decisions": [d.as_json() for d in self.decisions],
        }

    def dumps(self) -> str:
        """The file's text: sorted keys, two-space indent, a final newline (diffs stay readable)."""
        return json.dumps(self.as_json(), sort_keys=True, indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutRecord:
        """The record of a parsed file; KeyError/ValueError/TypeError when it is not one (callers
        translate them, naming the file)."""
        if data.get("schema") != ROLLOUT_SCHEMA:
            raise ValueError(f"schema is {data.get('schema')!r}, not {ROLLOUT_SCHEMA!r}")
        return cls(
            rollout_id=str(data["rollout_id"]),
            application=str(data["application"]),
            model=str(data["model"]),
            version=str(data["version"]),
            environment=str(data["environment"]),
            base=_routes(data["base"]),
            decisions=tuple(DecisionRecord.from_json(d) for d in data["decisions"]),
        )


def routes_text(routes: Routes, mirror: tuple[str, int] | None = None) -> str:
    """``1.3.0 90 %, 1.4.0 10 %`` (and the mirror): routes as every rollout message shows them."""
    text = ", ".join(f"{v} {w} %" for v, w in routes)
    return text + (f", mirroring {mirror[1]} % to {mirror[0]}" if mirror else "")


def routes_at(base: Routes, version: str, percent: int) -> Routes:
    """The binding's routes with ``percent`` on ``version`` and the rest shared by the base's other
    versions in proportion to their base weights (largest remainder, ties to the earlier route);
    at 100 only ``version`` stays, at 0 the base's other versions as rescaled to 100.

    ``version`` keeps its place when the base routes it, else it comes last. ValueError when the
    base routes nothing to another version (there is nothing to move from).
    """
    others = [(v, w) for v, w in base if v != version]
    total = sum(w for _, w in others)
    if percent >= 100:
        return ((version, 100),)
    if total <= 0:
        raise ValueError(f"the routes {list(base)} send no traffic to a version other than {version}")
    rest = 100 - percent
    exact = [(v, w * rest / total) for v, w in others]
    shares = {v: int(x) for v, x in exact}
    left = rest - sum(shares.values())
    for v, _ in sorted(exact, key=lambda item: -(item[1] - int(item[1])))[:left]:
        shares[v] += 1
    order = [v for v, _ in base] if any(v == version for v, _ in base) else [*(v for v, _ in base), version]
    weights = {**shares, version: percent}
    return tuple((v, weights[v]) for v in order if v in weights and (weights[v] > 0 or v == version))


def share_of(routes: Routes, version: str) -> int:
    """The weight ``routes`` give ``version`` (0 when they do not route it)."""
    return sum(w for v, w in routes if v == version)


def first_step(base: Routes, version: str, steps: Sequence[int]) -> int:
    """The step (1-based) a rollout of ``version`` from ``base`` starts at: the first whose percent is
    at least the share ``base`` already gives it, so the version's share never falls."""
    share = share_of(base, version)
    return next(k for k, percent in enumerate(steps, 1) if percent >= share or percent >= 100)


@dataclass(frozen=True)
class Move:
    """What the rule says to do now. ``decision`` None: nothing to record yet (the bake is running,
    the rollout is paused or finished); ``step``/``routes``/``mirror``: what is in force after it."""

    decision: DecisionKind | None
    reason: str
    step: int
    routes: Routes
    mirror: tuple[str, int] | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    wait_seconds: float = 0.0  # when decision is None and the rollout runs: how long until it is due


def _seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def decide_next(record: RolloutRecord, policy: RolloutPolicy, verdict: Verdict | None, now: str) -> Move:
    """The controller's rule, total and pure.

    - finished or paused: nothing (``decision`` None);
    - the bake of the step in force has not passed: nothing, ``wait_seconds`` until it has;
    - the analysis says rollback: abort (routes back to the base);
    - it says promote: the next step (``promote`` when that is the last one: 100 % on the version);
    - it holds (or there is none: ``verdict`` None): hold, and once the step has been due for longer
      than the progress deadline, abort with that reason. A hold is recorded only when the last
      decision was not already a hold with the same reason (the caller compares; see ``inputs``).
    """
    step = record.last.step if record.decisions else 0
    routes, mirror = record.routes, (record.last.mirror if record.decisions else None)
    started = record.bake_started
    if record.finished or record.status == "paused" or started is None:
        return Move(None, f"the rollout is {record.status}", step, routes, mirror)
    baked = _seconds(now, started)
    inputs: dict[str, Any] = {"verdict": verdict, "baked_seconds": round(baked, 3), "step": step}
    if baked < policy.interval_seconds:
        wait = policy.interval_seconds - baked
        reason = f"baking: {baked:.0f} of {policy.interval_seconds} s"
        return Move(None, reason, step, routes, mirror, inputs, wait_seconds=wait)
    if verdict == "rollback":
        return Move("abort", "the analysis says roll back", 0, record.base, None, inputs)
    if verdict == "promote":
        nxt = min(step + 1, len(policy.steps))
        percent = policy.steps[nxt - 1]
        if percent >= 100:
            return Move("promote", "the analysis passes: 100 %", nxt, ((record.version, 100),), None, inputs)
        moved = routes_at(record.base, record.version, percent)
        return Move("step", f"the analysis passes: {percent} %", nxt, moved, None, inputs)
    held = baked - policy.interval_seconds
    inputs["held_seconds"] = round(held, 3)
    if held >= policy.progress_deadline_seconds:
        reason = f"held past the progress deadline ({policy.progress_deadline_seconds} s) without a verdict"
        return Move("abort", reason, 0, record.base, None, inputs)
    return Move("hold", "the analysis holds" if verdict else "no analysis verdict", step, routes, mirror, inputs)
