"""``modelcat policy test``: every rule against its fixtures, asserting the exact finding sets.

Layout (the same for built-in and user rules), under ``<policies>/fixtures/<RULE ID>/``:

- ``<case>.yaml``: a catalog (models.yaml format); ``<case>.base.yaml`` optionally, the catalog
  of the base revision (for rules that need --base); or ``<case>.tf.json``: a synthesized stack
  (for rules over synthesized output, named ``<stack>.tf.json``).
- ``<case>.expect.yaml``: ``now: <date>`` (ages are computed against it) and ``findings:`` a list
  of ``{subject, message}``: exactly what the rule must report for this case. A case without an
  expectation file must be named ``pass*`` and expects no finding.

A rule fails when any case differs, when it has no fixture, or (deny rules) when no case fires it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from catalog.domain.strict import STRICT
from catalog.errors import FixtureInvalid
from catalog.policy.check import evaluate, load_for_policies, load_policies
from catalog.policy.contract import RuleEngine
from catalog.policy.findings import RuleInfo, SubjectInput
from catalog.policy.inputs import base_versions, catalog_inputs
from catalog.policy.rego import RegoPolicies
from catalog.policy.settings import Settings
from catalog.policy.synth_inputs import block_inputs
from catalog.policy.yamlfile import load_model
from catalog.validate import read_catalog_bytes
from catalog.yamlio.loader import parse

__all__ = ["FIXTURES", "CaseResult", "RuleResult", "case_inputs", "fixture_cases", "run_fixture_tests"]

FIXTURES = "fixtures"


def _date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date such as 2026-11-27") from None
    return value


class _Expected(BaseModel):
    model_config = STRICT

    subject: Annotated[str, Field(min_length=1)]
    message: Annotated[str, Field(min_length=1)]


class _Expectation(BaseModel):
    model_config = STRICT

    now: Annotated[date, BeforeValidator(_date)] | None = None
    findings: list[_Expected] = []


@dataclass
class CaseResult:
    case: str
    expected: set[tuple[str, str]]
    actual: set[tuple[str, str]]

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


@dataclass
class RuleResult:
    rule: RuleInfo
    cases: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.cases)


def fixture_cases(folder: Path) -> list[Path]:
    """The case files of one rule's fixture folder."""
    cases = [p for p in sorted(folder.glob("*.yaml")) if not p.name.endswith((".base.yaml", ".expect.yaml"))]
    return cases + sorted(folder.glob("*.tf.json"))


def _stem(case: Path) -> str:
    return case.name.removesuffix(".tf.json").removesuffix(".yaml")


def _expectation(case: Path) -> _Expectation:
    path = case.with_name(_stem(case) + ".expect.yaml")
    if not path.exists():
        if not _stem(case).startswith("pass"):
            raise FixtureInvalid(f"no {path.name}: a case not named pass* says what it expects", str(case))
        return _Expectation()
    _, expectation = load_model(path, _Expectation, FixtureInvalid)
    return expectation


def _inputs(case: Path, now: datetime, settings: Settings) -> list[SubjectInput]:
    if case.name.endswith(".tf.json"):
        try:
            text = case.read_text(encoding="utf-8")
            document = json.loads(text)
        except (OSError, ValueError) as e:
            raise FixtureInvalid(f"cannot read synthesized JSON: {e}", str(case)) from e
        return block_inputs(_stem(case), document, str(case), text)
    loaded = load_for_policies(read_catalog_bytes(case), str(case))
    base = None
    base_path = case.with_name(_stem(case) + ".base.yaml")
    if base_path.exists():
        base = base_versions(parse(base_path.read_text(encoding="utf-8"), str(base_path)).data)
    return catalog_inputs(loaded.catalog, now=now, settings=settings, base=base)


def case_inputs(case: Path, settings: Settings, expect: _Expectation | None = None) -> list[SubjectInput]:
    """The inputs of one case, with ages computed as of its expectation's ``now`` (default today)."""
    day = (expect or _expectation(case)).now or datetime.now(UTC).date()
    return _inputs(case, datetime(day.year, day.month, day.day, tzinfo=UTC), settings)


def run_fixture_tests(policies_dir: Path, engine: type[RuleEngine] = RegoPolicies) -> list[RuleResult]:
    """Every rule of ``policies_dir`` against its fixtures, evaluated by ``engine`` (regopy by default)."""
    policies, settings = load_policies(policies_dir, engine)
    results = []
    for rule in policies.rules:
        result = RuleResult(rule)
        folder = policies_dir / FIXTURES / rule.id
        cases = fixture_cases(folder) if folder.is_dir() else []
        if not cases:
            result.problems.append(f"no fixtures in {folder}")
        for case in cases:
            expect = _expectation(case)
            found = evaluate(policies, case_inputs(case, settings, expect), [rule])
            result.cases.append(
                CaseResult(
                    case.name,
                    {(f.subject, f.message) for f in expect.findings},
                    {(f.subject, f.message) for f in found},
                )
            )
        if rule.severity == "deny" and cases and not any(c.actual for c in result.cases):
            result.problems.append("no fixture makes this deny rule fire")
        results.append(result)
    return results
