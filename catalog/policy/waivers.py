"""policies/waivers.yaml: a finding may be waived for a while, for a reason, and it is said so.

An active waiver moves the findings it matches (rule and subject) to ``waived``; an expired one
is itself a deny (MC900) and waives nothing; an active one that matches nothing is a warning
(MC901), unless its rule was not evaluated in this run (no --base or --synth-dir).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from catalog.domain.strict import STRICT
from catalog.policy.findings import Finding, RuleInfo
from catalog.policy.yamlfile import load_model, problem_position

__all__ = ["EXPIRED", "UNUSED", "WAIVERS_FILE", "Waiver", "apply_waivers", "load_waivers"]

WAIVERS_FILE = "waivers.yaml"
EXPIRED = RuleInfo(
    "MC900",
    "Waiver expired",
    "deny",
    ("waiver",),
    name="WaiverExpired",
    description="A waiver in policies/waivers.yaml is past its expiry date: it waives nothing any more, and the "
    "findings it waived are reported again. Fix what it waived and remove the waiver, or renew it with a reason.",
)
UNUSED = RuleInfo(
    "MC901",
    "Waiver unused",
    "warn",
    ("waiver",),
    name="WaiverUnused",
    description="A waiver in policies/waivers.yaml matches no finding of a rule that was evaluated (or names a "
    "rule these policies do not have): what it waived is fixed, or its rule or subject is misspelled. Remove "
    "or correct it.",
)


def _date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a date such as 2026-12-31")  # noqa: TRY004 -- pydantic wants ValueError
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a date such as 2026-12-31") from None


class _WaiverSpec(BaseModel):
    model_config = STRICT

    rule: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]*[0-9]{3}$")]
    subject: Annotated[str, Field(min_length=3, max_length=512)]
    reason: Annotated[str, Field(min_length=3, max_length=2000)]
    expires: Annotated[date, BeforeValidator(_date)]


class _WaiversFile(BaseModel):
    model_config = STRICT

    waivers: list[_WaiverSpec] = []


@dataclass(frozen=True, slots=True)
class Waiver:
    rule: str
    subject: str
    reason: str
    expires: date
    file: str
    line: int


def load_waivers(policies: Path) -> list[Waiver]:
    path = policies / WAIVERS_FILE
    if not path.exists():
        return []
    text, parsed = load_model(path, _WaiversFile)
    waivers = []
    for i, spec in enumerate(parsed.waivers):
        line, _ = problem_position(text, ("waivers", i))
        waivers.append(Waiver(spec.rule, spec.subject, spec.reason, spec.expires, str(path), line))
    return waivers


def apply_waivers(
    findings: list[Finding], waivers: list[Waiver], today: date, evaluated: set[str], known: set[str]
) -> tuple[list[Finding], list[Finding], list[RuleInfo]]:
    """(findings that stand, with MC900/MC901 added; waived findings; the waiver rules that fired)."""
    active = {(w.rule, w.subject): w for w in waivers if w.expires >= today}
    used: set[tuple[str, str]] = set()
    standing: list[Finding] = []
    waived: list[Finding] = []
    for finding in findings:
        waiver = active.get((finding.rule, finding.subject))
        if waiver is None:
            standing.append(finding)
        else:
            used.add((waiver.rule, waiver.subject))
            waived.append(replace(finding, waived=waiver.reason))
    fired: dict[str, RuleInfo] = {}
    for w in waivers:
        about = f"waiver of {w.rule} for {w.subject}"
        if w.expires < today:
            message = f"{about} expired on {w.expires.isoformat()} (reason: {w.reason}): renew or remove it"
            standing.append(_finding(EXPIRED, message, w))
            fired[EXPIRED.id] = EXPIRED
        elif w.rule not in known:
            standing.append(_finding(UNUSED, f"{about} names no rule of these policies: fix or remove it", w))
            fired[UNUSED.id] = UNUSED
        elif (w.rule, w.subject) not in used and w.rule in evaluated:
            standing.append(_finding(UNUSED, f"{about} matches no finding: remove it", w))
            fired[UNUSED.id] = UNUSED
    return standing, waived, list(fired.values())


def _finding(rule: RuleInfo, message: str, w: Waiver) -> Finding:
    return Finding(
        rule.id, rule.title, rule.severity, message, "waiver", f"waiver/{w.rule}/{w.subject}", w.file, w.line, 1
    )
