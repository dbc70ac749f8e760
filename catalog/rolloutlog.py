"""The catalog's commits read as decisions: a rollout's (its trailers and its record), a rollback, or
a change by hand; and a decision's evidence in a few words.

A rollout decision's commit carries ``Rollout-Id``, ``Step``, ``Decision``, ``Evidence``
(``rollouts/<id>.json#N sha256:...``: the N-th decision of the rollout's file at that commit) and
``Decided-By``; a rollback's carries ``Rollback-To: <ref> <sha>`` and ``Decided-By``; any other
commit is a change by hand, decided by its author. ``rollout history`` and ``review`` read them
here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from catalog.domain.rollouts import ROLLOUTS_FOLDER, DecisionRecord, RolloutRecord
from catalog.gitio import LoggedCommit, commit_log, show_at_revision

__all__ = [
    "DECIDED_BY",
    "ROLLBACK_TO",
    "CommitDecision",
    "EvidenceSummary",
    "catalog_commits",
    "read_decision",
    "record_at",
    "summarise_evidence",
]

DECIDED_BY = "Decided-By"
ROLLBACK_TO = "Rollback-To"


@dataclass(frozen=True)
class EvidenceSummary:
    """What a decision's analysis said about the rollout's version, in brief."""

    verdict: str | None  # the candidate's verdict: promote, hold, rollback (None: not analysed)
    versions: tuple[tuple[str, int, int], ...]  # (version, units, requests) of every observed version
    votes: tuple[tuple[str, str], ...]  # (metric, pass/fail/hold) of the candidate
    copies: int | None = None  # a shadow step's analysis: the mirrored requests it compared
    agreement: float | None = None  # ... and the share of them whose answers agreed

    @property
    def units(self) -> int:
        return sum(units for _, units, _ in self.versions)

    def text(self) -> str:
        """``promote on 1,251 units (1.3.0: 1,190 units, 9,870 requests; 1.4.0: ...); votes: error_rate pass``,
        or for a shadow step ``hold on 900 mirrored copies (agreement 97.1 %); votes: ...``."""
        votes = ", ".join(f"{name} {vote}" for name, vote in self.votes) or "none"
        verdict = self.verdict or "no verdict"
        if self.copies is not None:
            agreed = (
                f"agreement {self.agreement:.1%}".replace("%", " %") if self.agreement is not None else "none compared"
            )
            return f"{verdict} on {self.copies:,} mirrored copies ({agreed}); votes: {votes}"
        shares = "; ".join(f"{v}: {u:,} units, {r:,} requests" for v, u, r in self.versions)
        return f"{verdict} on {self.units:,} units ({shares}); votes: {votes}"

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "units": self.units,
            "versions": [{"version": v, "units": u, "requests": r} for v, u, r in self.versions],
            "votes": [{"metric": name, "vote": vote} for name, vote in self.votes],
            "copies": self.copies,
            "agreement": self.agreement,
        }


def summarise_evidence(evidence: Mapping[str, Any] | None, version: str) -> EvidenceSummary | None:
    """The summary of an analysis decision document (a decision's ``evidence``) for ``version``."""
    if not evidence or not isinstance(evidence.get("versions"), list):
        return None
    rows = [v for v in evidence["versions"] if isinstance(v, Mapping)]
    candidate = next((v for v in rows if v.get("version") == version), {})
    counts = evidence.get("counts")  # the shadow step's analysis counts mirrored copies, not units
    shadow = counts if isinstance(counts, Mapping) and "copies" in counts else None
    return EvidenceSummary(
        verdict=candidate.get("verdict"),
        versions=tuple((str(v.get("version")), int(v.get("units") or 0), int(v.get("requests") or 0)) for v in rows),
        votes=tuple((str(m.get("name")), str(m.get("vote"))) for m in candidate.get("metrics") or ()),
        copies=int(shadow.get("copies") or 0) if shadow is not None else None,
        agreement=shadow.get("agreement") if shadow is not None else None,
    )


@dataclass(frozen=True)
class CommitDecision:
    """One commit of the catalog read as a decision."""

    commit: LoggedCommit
    kind: Literal["rollout", "rollback", "hand"]
    decided_by: str  # the Decided-By trailer, else the commit's author
    reason: str  # the recorded decision's reason, else the message's first paragraph, else its subject
    decision: str | None = None  # the Decision trailer (a rollout's), "rollback"
    rollout_id: str | None = None
    step: str | None = None  # the Step trailer: "2/4"
    evidence_ref: str | None = None  # the Evidence trailer
    record: RolloutRecord | None = None  # the rollout's file at that commit
    recorded: DecisionRecord | None = None  # the decision the Evidence trailer points at
    evidence: EvidenceSummary | None = None
    rollback_to: str | None = None  # "<ref> <sha>"
    problem: str | None = None  # why the rollout's file could not be read at that commit

    @property
    def by_hand(self) -> bool:
        return self.kind == "hand"

    def line(self) -> str:
        """One line: ``rollout R step 2 of 4 (step), evidence: promote on 1,251 units ...``."""
        sha = self.commit.sha[:12]
        if self.kind == "rollback":
            return f"{sha} rollback to {self.rollback_to}, by {self.decided_by}: {self.reason}"
        if self.kind == "hand":
            return f"{sha} by hand, {self.decided_by}: {self.reason}"
        done, _, total = (self.step or "?/?").partition("/")
        text = f"{sha} rollout {self.rollout_id} step {done} of {total} ({self.decision}), by {self.decided_by}"
        if self.evidence is not None:
            text += f", evidence: {self.evidence.text()}"
        elif self.problem is not None:
            text += f", evidence unreadable: {self.problem}"
        else:
            text += ", no analysis read"
        return f"{text}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit.sha,
            "time": self.commit.time,
            "subject": self.commit.subject,
            "kind": self.kind,
            "by_hand": self.by_hand,
            "decided_by": self.decided_by,
            "reason": self.reason,
            "decision": self.decision,
            "rollout_id": self.rollout_id,
            "step": self.step,
            "evidence_ref": self.evidence_ref,
            "evidence": self.evidence.as_json() if self.evidence is not None else None,
            "rollback_to": self.rollback_to,
            "problem": self.problem,
        }


def record_at(folder: Path, commit: str, rollout_id: str) -> RolloutRecord:
    """The rollout's file (beside the catalog in ``folder``) at ``commit``; ValueError naming the
    file when it is missing or not a rollout record."""
    name = f"{ROLLOUTS_FOLDER}/{rollout_id}.json"
    data = show_at_revision(folder, commit, name)
    if data is None:
        raise ValueError(f"{name} does not exist at {commit[:12]}")
    try:
        return RolloutRecord.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{name}@{commit[:12]} is not a rollout record: {e}") from e


def _first_paragraph(commit: LoggedCommit) -> str:
    """The first paragraph of the message's body, on one line ("" when the body is only trailers)."""
    paragraph = commit.body.split("\n\n", 1)[0].strip()
    keys = {key.lower() for key, _ in commit.trailers}
    if not paragraph or all(line.partition(":")[0].strip().lower() in keys for line in paragraph.splitlines()):
        return ""
    return " ".join(paragraph.split())


def _decision_index(ref: str | None) -> int | None:
    """N of ``rollouts/<id>.json#N sha256:...``."""
    if not ref:
        return None
    target = ref.split()[0]
    _, sep, index = target.partition("#")
    return int(index) if sep and index.isdigit() else None


def read_decision(folder: Path, commit: LoggedCommit) -> CommitDecision:
    """What ``commit`` decided: a rollout decision (its record read at the commit), a rollback, or a
    change by hand."""
    decided_by = commit.trailer(DECIDED_BY) or commit.author
    said = _first_paragraph(commit) or commit.subject
    rollback = commit.trailer(ROLLBACK_TO)
    if rollback is not None:
        return CommitDecision(commit, "rollback", decided_by, said, decision="rollback", rollback_to=rollback)
    rollout_id = commit.trailer("Rollout-Id")
    if rollout_id is None:
        return CommitDecision(commit, "hand", commit.author, commit.subject)
    ref = commit.trailer("Evidence")
    fields: dict[str, Any] = {
        "decision": commit.trailer("Decision"),
        "rollout_id": rollout_id,
        "step": commit.trailer("Step"),
        "evidence_ref": ref,
    }
    try:
        record = record_at(folder, commit.sha, rollout_id)
    except ValueError as e:
        return CommitDecision(commit, "rollout", decided_by, said, problem=str(e), **fields)
    index = _decision_index(ref)
    recorded = record.decisions[index] if index is not None and 0 <= index < len(record.decisions) else None
    if recorded is None and record.decisions:
        recorded = record.last
    evidence = summarise_evidence(recorded.evidence, record.version) if recorded is not None else None
    reason = recorded.reason if recorded is not None and recorded.reason else said
    return CommitDecision(
        commit, "rollout", decided_by, reason, record=record, recorded=recorded, evidence=evidence, **fields
    )


def catalog_commits(catalog: Path, revisions: str = "HEAD") -> list[CommitDecision]:
    """Every commit of ``revisions`` that touched the catalog file or its rollouts' files, oldest
    first, read as decisions."""
    folder = catalog.resolve().parent
    return [read_decision(folder, c) for c in commit_log(folder, [catalog.name, ROLLOUTS_FOLDER], revisions)]
