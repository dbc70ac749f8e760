"""The analysis of a rollout's step: the candidate's verdict over [the step's start, now] and the
evidence a decision keeps of it.

A step with live traffic is analysed like ``modelcat analyze`` (``catalog.analysis.run``); the shadow
step (a mirror in force) by the shadow analysis (``catalog.analysis.shadow``), whose document has
the same shape. An analysis that cannot be made (the metrics source down) gives no verdict: the rule holds,
never steps or aborts on it (until the progress deadline).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalog.analysis.evidence import evidence_of
from catalog.analysis.run import analyze_with_observations
from catalog.analysis.shadow import analyze_shadow
from catalog.domain.rollouts import Verdict
from catalog.errors import ModelcatError
from catalog.rollout.record import RolloutState

__all__ = ["StepAnalysis", "analyse_step"]


@dataclass(frozen=True)
class StepAnalysis:
    """The candidate's verdict (None: no analysis could be made, ``reason`` says why), the evidence
    to record and the analysis plan it applied."""

    verdict: Verdict | None
    reason: str
    evidence: Mapping[str, Any] | None = None
    plan: Mapping[str, Any] | None = None

    @property
    def detail(self) -> str:
        """The lines a commit's body adds: each version's verdict and reasons."""
        if self.evidence is None:
            return self.reason
        lines = []
        for v in self.evidence.get("versions", []):
            reasons = "; ".join(v.get("reasons") or [])
            lines.append(
                f"{v.get('version')} ({v.get('role')}): {v.get('verdict') or '-'}{': ' + reasons if reasons else ''}"
            )
        return "\n".join(lines)

    def hold_reason(self, rule_reason: str) -> str:
        """Why a step holds: the analysis's own words when it gave no verdict, else the rule's."""
        return self.reason if self.verdict is None and self.reason else rule_reason


def _verdict_of(document: Mapping[str, Any], version: str) -> tuple[Verdict | None, str]:
    mine = next((v for v in document.get("versions", []) if v.get("version") == version), None)
    if mine is None:
        return None, f"the analysis does not compare {version}"
    verdict = mine.get("verdict")
    if verdict not in ("promote", "hold", "rollback"):
        return None, f"the analysis gives {version} no verdict"
    return verdict, "; ".join(mine.get("reasons") or []) or f"{version}: {verdict}"


def analyse_step(state: RolloutState, now: datetime, target: str = "local") -> StepAnalysis:
    """The analysis of the rollout's step in force, over [its start, ``now``]."""
    record = state.record
    assert record is not None and record.step_started is not None
    since = datetime.fromisoformat(record.step_started)
    args = (state.catalog, state.catalog_path, state.application, state.binding, target, since, now)
    if state.mirror is not None:
        try:
            document = analyze_shadow(state.catalog, state.catalog_path, state.application, state.binding,
                                      record.version, target, since, now)  # fmt: skip
        except ModelcatError as e:
            return StepAnalysis(None, f"the shadow analysis failed: {e}")
        verdict, reason = _verdict_of(document, record.version)
        kept = {k: v for k, v in document.items() if k != "history"}
        return StepAnalysis(verdict, reason, kept, document.get("plan"))
    try:
        document, observations = analyze_with_observations(*args)
    except ModelcatError as e:
        return StepAnalysis(None, f"the analysis failed: {e}")
    verdict, reason = _verdict_of(document, record.version)
    return StepAnalysis(verdict, reason, evidence_of(document, observations), document.get("plan"))
