"""``modelcat rollout replay ROLLOUT-ID``: every decision of a rollout re-derived from what it recorded.

The rollout's file is read at HEAD. Each decision the controller made by its rule (it recorded the
rule's inputs, a verdict among them, and was not forced) is decided again: the analysis verdict
from its evidence (``catalog.analysis.evidence`` rebuilds the plan and the observations,
``catalog.analysis.verdict.decide`` runs on them), then ``catalog.domain.rollouts.decide_next`` on
the record as it stood before that decision, with the policy it recorded and at its time (the
shadow step's analysis keeps no observations: its document's verdict is read, not decided again). The
kind and the routes it gives must be the ones recorded; so must the verdict, and the evidence's
digest in the commit's ``Evidence`` trailer must match the file. Then the same again under today's
policy (the HEAD catalog's effective rollout and analysis plan), listing the decisions that would
now differ and why. Decisions made by a person (start, pause, resume, abort by command, promote
--force) are listed as such, not re-derived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from catalog.analysis.data import Verdict
from catalog.analysis.evidence import observations_from_json, plan_from_document
from catalog.analysis.verdict import decide
from catalog.domain.analysis_plan import AnalysisPlan
from catalog.domain.effective import effective_analysis
from catalog.domain.models import Catalog
from catalog.domain.rollouts import (
    ROLLOUTS_FOLDER,
    DecisionRecord,
    Move,
    RolloutPolicy,
    RolloutRecord,
    decide_next,
    evidence_digest,
    routes_text,
)
from catalog.errors import RolloutError, UsageError
from catalog.gitio import commit_log
from catalog.revisions import load_revision
from catalog.rollout.record import policy_of
from catalog.rolloutlog import record_at

__all__ = ["SCHEMA", "Replay", "Replayed", "replay"]

SCHEMA = "modelcat/rollout-replay-v1"
RULED = frozenset({"step", "hold", "promote", "abort"})  # the kinds decide_next gives


@dataclass
class Replayed:
    """One decision and what deciding it again gives."""

    index: int
    recorded: DecisionRecord
    by_person: bool  # listed, not re-derived
    verdict: Verdict | None = None  # the verdict its evidence gives now
    # where it comes from: "observations" (decided again), "document" (read: a shadow analysis keeps
    # no observations to decide on), None (no evidence: the analysis could not be made)
    verdict_source: str | None = None
    move: Move | None = None  # decide_next under its own policy
    differences: list[str] = field(default_factory=list)  # why it does not reproduce
    today: Move | None = None  # decide_next under today's policy
    today_verdict: Verdict | None = None
    today_differences: list[str] = field(default_factory=list)

    @property
    def reproduces(self) -> bool:
        return self.by_person or not self.differences

    def as_json(self) -> dict[str, Any]:
        def move(m: Move | None) -> dict[str, Any] | None:
            if m is None:
                return None
            return {
                "decision": m.decision,
                "reason": m.reason,
                "step": m.step,
                "routes": [{"version": v, "weight": w} for v, w in m.routes],
            }

        r = self.recorded
        return {
            "index": self.index,
            "decision": r.decision,
            "time": r.time,
            "actor": r.actor,
            "reason": r.reason,
            "by_person": self.by_person,
            "routes": [{"version": v, "weight": w} for v, w in r.routes],
            "recorded_verdict": r.inputs.get("verdict"),
            "verdict": self.verdict,
            "verdict_source": self.verdict_source,
            "replayed": move(self.move),
            "reproduces": self.reproduces,
            "differences": self.differences,
            "today": move(self.today),
            "today_verdict": self.today_verdict,
            "today_differs": bool(self.today_differences),
            "today_differences": self.today_differences,
        }


@dataclass
class Replay:
    record: RolloutRecord
    decisions: list[Replayed]
    notes: list[str] = field(default_factory=list)  # what today's policy could not be compared with

    @property
    def failed(self) -> list[Replayed]:
        return [d for d in self.decisions if not d.reproduces]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "schema": SCHEMA,
            "rollout_id": self.record.rollout_id,
            "application": self.record.application,
            "model": self.record.model,
            "version": self.record.version,
            "status": self.record.status,
            "decisions": [d.as_json() for d in self.decisions],
            "reproduced": sum(1 for d in self.decisions if not d.by_person and d.reproduces),
            "not_reproduced": [d.index for d in self.failed],
            "differ_today": [d.index for d in self.decisions if d.today_differences],
            "notes": self.notes,
        }


def _by_person(decision: DecisionRecord) -> bool:
    return decision.decision not in RULED or decision.forced or "verdict" not in decision.inputs


def _verdict(plan: AnalysisPlan, evidence: Mapping[str, Any], version: str) -> Verdict | None:
    decided = decide(plan, observations_from_json(evidence["observations"]))
    return next((v.verdict for v in decided.versions if v.version == version), None)


def _document_verdict(evidence: Mapping[str, Any], version: str) -> Verdict | None:
    """The verdict an analysis document gives ``version`` (None: none it could give)."""
    mine: Mapping[str, Any] = next((v for v in evidence.get("versions") or () if v.get("version") == version), {})
    verdict = mine.get("verdict")
    return verdict if verdict in ("promote", "hold", "rollback") else None


def _compare(move: Move, recorded: DecisionRecord) -> list[str]:
    out = []
    if move.decision != recorded.decision:
        out.append(f"the rule says {move.decision or 'nothing yet'} ({move.reason}), not {recorded.decision}")
    elif move.routes != recorded.routes:
        out.append(f"the rule gives the routes {routes_text(move.routes)}, not {routes_text(recorded.routes)}")
    return out


def _policy_changes(then: RolloutPolicy, now: RolloutPolicy) -> list[str]:
    return [
        f"{name} {getattr(then, name)} then, {getattr(now, name)} today"
        for name in ("steps", "interval_seconds", "progress_deadline_seconds", "shadow_percent")
        if getattr(then, name) != getattr(now, name)
    ]


def _plan_changes(then: AnalysisPlan, now: AnalysisPlan) -> list[str]:
    fields = ("primary", "max_error_rate", "max_p99_latency_ms", "outcome_guardrails", "min_samples_per_arm", "alpha")
    return [
        f"analysis {name} {getattr(then, name)} then, {getattr(now, name)} today"
        for name in fields
        if getattr(then, name) != getattr(now, name)
    ]


def _replay_one(
    record: RolloutRecord,
    index: int,
    trailer_digest: str | None,
    today: tuple[RolloutPolicy, AnalysisPlan] | None,
) -> Replayed:
    recorded = record.decisions[index]
    result = Replayed(index, recorded, _by_person(recorded))
    if result.by_person:
        return result
    before = replace(record, decisions=record.decisions[:index])
    evidence = recorded.evidence
    if trailer_digest is not None and trailer_digest != evidence_digest(evidence):
        result.differences.append(
            f"its evidence in the file ({evidence_digest(evidence)}) is not the one its commit names ({trailer_digest})"
        )
    policy_json = recorded.policy.get("rollout")
    if not isinstance(policy_json, Mapping):
        result.differences.append("it recorded no rollout policy to decide again with")
        return result
    plan = None
    try:
        policy = RolloutPolicy.from_json(policy_json)
        if evidence and "observations" in evidence:
            plan = plan_from_document(evidence)
            result.verdict, result.verdict_source = _verdict(plan, evidence, record.version), "observations"
        elif evidence:  # the shadow step's analysis keeps no observations: its document's verdict
            result.verdict, result.verdict_source = _document_verdict(evidence, record.version), "document"
    except (KeyError, TypeError, ValueError) as e:
        result.differences.append(f"its policy or evidence cannot be read back: {type(e).__name__} {e}")
        return result
    if result.verdict != recorded.inputs.get("verdict"):
        result.differences.append(
            f"its evidence gives the verdict {result.verdict}, it recorded {recorded.inputs.get('verdict')}"
        )
    result.move = decide_next(before, policy, result.verdict, recorded.time)
    result.differences += _compare(result.move, recorded)
    if today is None:
        return result
    today_policy, today_plan = today
    why = _policy_changes(policy, today_policy)
    if evidence and plan is not None:
        plan_now = replace(today_plan, baseline=plan.baseline, candidates=plan.candidates)
        result.today_verdict = _verdict(plan_now, evidence, record.version)
        why += _plan_changes(plan, plan_now)
        if result.today_verdict != result.verdict:
            why.append(f"the analysis says {result.today_verdict} today, {result.verdict} then")
    else:
        result.today_verdict = result.verdict
    result.today = decide_next(before, today_policy, result.today_verdict, recorded.time)
    differs = _compare(result.today, recorded)
    if differs:
        result.today_differences = differs + (why or ["the rule itself decides otherwise today"])
    return result


def _today(catalog: Catalog, record: RolloutRecord) -> tuple[RolloutPolicy, AnalysisPlan] | str:
    """Today's policy for the rollout's binding, or why there is none."""
    app = next((a for a in catalog.applications if a.name == record.application), None)
    binding = next((b for b in app.bindings if b.model == record.model), None) if app is not None else None
    if app is None or binding is None:
        return f"{record.application} binds no {record.model} today: no policy of today to compare with"
    try:
        return policy_of(catalog, binding), effective_analysis(catalog, app, binding)
    except ValueError as e:
        return f"today's analysis plan cannot be read: {e}"


def _trailer_digests(folder: Path, name: str) -> dict[int, str]:
    """Decision index -> the evidence digest its commit's Evidence trailer names."""
    found: dict[int, str] = {}
    for commit in commit_log(folder, [name]):
        ref = commit.trailer("Evidence")
        if not ref or len(ref.split()) < 2:
            continue
        target, digest = ref.split()[:2]
        file, _, index = target.partition("#")
        if file == name and index.isdigit():
            found[int(index)] = digest
    return found


def replay(path: Path, rollout_id: str) -> Replay:
    """Replay the rollout ``rollout_id`` of the catalog ``path`` as committed at HEAD."""
    if not rollout_id.strip() or "/" in rollout_id or rollout_id.startswith("-"):
        raise UsageError(f"{rollout_id!r} is not a rollout id such as checkout.fraud-scorer.1.4.0.20261206T201000Z")
    folder = path.resolve().parent
    try:
        record = record_at(folder, "HEAD", rollout_id)
    except ValueError as e:
        raise RolloutError(str(e)) from e
    head = load_revision(path, "HEAD")
    notes: list[str] = []
    today: tuple[RolloutPolicy, AnalysisPlan] | None = None
    if head.catalog is None or head.errors:
        notes.append(f"{path.name} at HEAD is not a valid catalog: no policy of today to compare with")
    else:
        found = _today(head.catalog, record)
        if isinstance(found, str):
            notes.append(found)
        else:
            today = found
    digests = _trailer_digests(folder, f"{ROLLOUTS_FOLDER}/{rollout_id}.json")
    decisions = [_replay_one(record, i, digests.get(i), today) for i in range(len(record.decisions))]
    return Replay(record, decisions, notes)
