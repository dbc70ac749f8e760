"""What a policy run produces: rules, findings (with where they point in models.yaml), waivers used."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ["Finding", "PolicyResult", "RuleInfo", "Severity", "SubjectInput"]

Severity = Literal["deny", "warn"]


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule's metadata, read from its ``rule`` object in the .rego file."""

    id: str
    title: str
    severity: Severity
    kinds: tuple[str, ...]  # the input kinds it looks at: model, version, application, binding, resource
    requires: tuple[str, ...] = ()  # facts it needs: "base" (--base), "synth" (--synth-dir)
    file: str = ""
    package: str = ""
    name: str = ""  # PascalCase, e.g. ArtifactPinnedByDigest (SARIF's reportingDescriptor.name)
    description: str = ""  # what the rule checks, in a few sentences
    help_uri: str = ""  # where it is documented; default: its anchor on modelcat's policies page


@dataclass(frozen=True, slots=True)
class SubjectInput:
    """One small Rego input: a catalog subject (or a synthesized block) and its precomputed facts."""

    kind: str  # model | version | application | binding | resource
    subject: str  # e.g. binding/checkout/fraud-scorer; what waivers name
    document: dict[str, object]  # the input document (JSON types only, no nulls)
    loc: tuple[str | int, ...] = ()  # field path in the catalog, for its position
    file: str = ""  # set for subjects outside models.yaml (synthesized JSON)
    line: int = 0


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    title: str
    severity: Severity
    message: str
    kind: str
    subject: str
    file: str = ""
    line: int = 0
    column: int = 0
    waived: str = ""  # the waiver's reason when an active waiver suppresses it

    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.subject, self.message)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class PolicyResult:
    """Every finding of a run. ``findings`` excludes waived ones, which are in ``waived``."""

    rules: list[RuleInfo]
    findings: list[Finding] = field(default_factory=list)
    waived: list[Finding] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # rule id -> why it was not evaluated
    inputs: int = 0
    base: str = ""
    now: str = ""

    @property
    def denies(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "deny"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warn"]

    @property
    def ok(self) -> bool:
        return not self.denies
