"""``modelcat policy check``: load the catalog (and the base revision), build the inputs, run the
rules, place each finding on the models.yaml line of its subject, apply the waivers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from catalog.domain.models import Catalog, Model, Version
from catalog.domain.problems import Problem
from catalog.errors import CatalogInvalid, UsageError
from catalog.policy.contract import RuleEngine, policy_files
from catalog.policy.findings import Finding, PolicyResult, RuleInfo, SubjectInput
from catalog.policy.inputs import BaseVersion, base_versions, base_versions_of, catalog_inputs
from catalog.policy.rego import RegoPolicies
from catalog.policy.settings import Settings, load_settings
from catalog.policy.synth_inputs import synth_inputs
from catalog.policy.waivers import Waiver, apply_waivers, load_waivers
from catalog.revisions import Revision, load_revision
from catalog.validate import read_catalog_bytes, validate_bytes
from catalog.yamlio.loader import decode, parse
from catalog.yamlio.positions import locate

__all__ = [
    "VALIDATE",
    "LoadedCatalog",
    "artifact_observer",
    "evaluate",
    "judge",
    "load_for_policies",
    "load_policies",
    "locate_findings",
    "policy_check",
    "policy_data",
    "policy_inputs",
    "validation_findings",
]

VALIDATE = RuleInfo(
    "VALIDATE",
    "Catalog validates",
    "deny",
    ("catalog",),
    name="CatalogValidates",
    description="The catalog passes modelcat validate: its schema, and the cross-references between models, "
    "versions and applications (e.g. a route to a version that does not exist or is retired). Each error is "
    "reported at its line; run modelcat validate for the same list. Validation errors cannot be waived.",
)


@dataclass(frozen=True, slots=True)
class LoadedCatalog:
    text: str
    catalog: Catalog
    errors: list[Problem]  # validate's errors (cross-references): the schema held, so rules can still run


def load_for_policies(data: bytes, filename: str) -> LoadedCatalog:
    """A typed catalog for the rules. Cross-reference errors do not stop them (they are reported
    beside the findings); a catalog that fails the schema cannot be judged: CatalogInvalid."""
    report = validate_bytes(data, filename)
    text, _ = decode(data, filename)
    if report.catalog is not None:
        return LoadedCatalog(text, report.catalog, [])
    parsed = parse(text, filename) if text else None
    try:
        if parsed is None or parsed.data is None:
            raise CatalogInvalid(filename, report.errors)
        catalog = Catalog.model_validate(parsed.data)
    except ValidationError:
        raise CatalogInvalid(filename, report.errors) from None
    return LoadedCatalog(text, catalog, report.errors)


def policy_data(settings: Settings) -> dict[str, object]:
    """The data document the rules read (the shape of policies/settings.yaml)."""
    return {"modelcat": {"settings": settings.model_dump()}}


def load_policies(folder: Path, engine: type[RuleEngine] = RegoPolicies) -> tuple[RuleEngine, Settings]:
    """The rule files of ``folder`` (not its ``*_test.rego``) compiled by ``engine``, and its settings."""
    if not folder.is_dir():
        raise UsageError(f"--policies {folder}: no such folder")
    files = policy_files(folder)
    if not files:
        raise UsageError(f"--policies {folder}: no *.rego rule files in it")
    settings = load_settings(folder)
    return engine(files, policy_data(settings)), settings


def evaluate(policies: RuleEngine, inputs: Iterable[SubjectInput], rules: Iterable[RuleInfo]) -> list[Finding]:
    """Every finding of ``rules`` over ``inputs`` (each rule sees only the kinds it names)."""
    by_kind: dict[str, list[RuleInfo]] = {}
    for rule in rules:
        for kind in rule.kinds:
            by_kind.setdefault(kind, []).append(rule)
    findings: list[Finding] = []
    for item in inputs:
        for rule in by_kind.get(item.kind, ()):
            for message in dict.fromkeys(policies.messages(rule, item)):
                findings.append(
                    Finding(rule.id, rule.title, rule.severity, message, item.kind, item.subject, item.file, item.line)
                )
    return findings


def locate_findings(findings: list[Finding], inputs: Iterable[SubjectInput], text: str, filename: str) -> list[Finding]:
    """File, line and column of each finding's subject in models.yaml."""
    wanted = {f.subject for f in findings if not f.file}
    locs = {i.subject: i.loc for i in inputs if not i.file and i.subject in wanted}
    positions = locate(text, set(locs.values())) if locs else {}  # a parse of the text: only when needed
    placed = []
    for f in findings:
        if f.file or f.subject not in locs:
            placed.append(f)
            continue
        pos = positions.get(locs[f.subject])
        placed.append(replace(f, file=filename, line=pos.line if pos else 1, column=pos.column if pos else 1))
    return placed


def artifact_observer(folder: Path) -> Callable[[Model, Version], Mapping[str, object]]:
    """Artifact facts from the local store: the size of a stored file the URI points at."""

    def observe(model: Model, version: Version) -> Mapping[str, object]:
        uri = version.artifact.uri
        if "://" in uri and not uri.startswith("file://"):
            return {}
        path = Path(uri.removeprefix("file://"))
        path = path if path.is_absolute() else folder / path
        try:
            if path.is_file():
                return {"observed_size_bytes": path.stat().st_size}
        except OSError:
            pass
        return {}

    return observe


def _base(path: Path, ref: str, head: LoadedCatalog) -> dict[tuple[str, str], BaseVersion]:
    """The base revision's facts: from its catalog when valid, else read leniently from its YAML
    (a base that no longer passes today's schema still gives its history)."""
    like = Revision(path, None, True, head.text, head.catalog) if not head.errors else None
    base = load_revision(path, ref, like=like)
    if not base.present:
        return {}
    if base.catalog is not None:
        return base_versions_of(base.catalog)
    document = base.document()
    if document is None:
        raise UsageError(f"{path} at {ref} cannot be read as YAML, so there is no base to compare with")
    return base_versions(document)


def validation_findings(errors: list[Problem]) -> list[Finding]:
    """validate's problems as VALIDATE denies at their positions."""
    return [
        Finding(
            VALIDATE.id,
            VALIDATE.title,
            "deny",
            f"{p.message} [{p.code}]",
            "catalog",
            p.path or "catalog",
            p.file,
            p.line,
            p.column,
        )
        for p in errors
    ]


def _inputs(
    path: Path,
    loaded: LoadedCatalog,
    settings: Settings,
    now: datetime,
    base_ref: str | None,
    synth_dir: Path | None,
) -> tuple[list[SubjectInput], bool]:
    base = _base(path, base_ref, loaded) if base_ref else None
    inputs = catalog_inputs(
        loaded.catalog, now=now, settings=settings, base=base, observe=artifact_observer(path.resolve().parent)
    )
    if synth_dir is not None:
        inputs += synth_inputs(synth_dir)
    return inputs, base is not None


def policy_inputs(
    path: Path,
    *,
    policies_dir: Path,
    now: datetime,
    base_ref: str | None = None,
    synth_dir: Path | None = None,
) -> list[SubjectInput]:
    """The inputs the rules see (what ``modelcat policy input`` exports for conftest)."""
    loaded = load_for_policies(read_catalog_bytes(path), str(path))
    return _inputs(path, loaded, load_settings(policies_dir), now, base_ref, synth_dir)[0]


def policy_check(
    path: Path,
    *,
    policies_dir: Path,
    now: datetime,
    base_ref: str | None = None,
    synth_dir: Path | None = None,
    revision: str | None = None,
    subjects: set[str] | None = None,
) -> PolicyResult:
    """The rules over the catalog file (``revision``: as committed at that git revision instead of
    the working tree's), all its subjects or only ``subjects`` (see ``judge``)."""
    if revision is None:
        data = read_catalog_bytes(path)
    else:
        committed = load_revision(path, revision)
        if committed.text is None:
            raise UsageError(f"{path} does not exist at {revision} (or is not UTF-8)")
        data = committed.text.encode()
    loaded = load_for_policies(data, str(path))
    policies, settings = load_policies(policies_dir)
    inputs, has_base = _inputs(path, loaded, settings, now, base_ref, synth_dir)
    have = {"base"} if has_base else set()
    have |= {"synth"} if synth_dir is not None else set()
    waivers = load_waivers(policies_dir)
    return judge(loaded, str(path), inputs, policies, waivers, now, have, base_ref or "", subjects=subjects)


def judge(
    loaded: LoadedCatalog,
    filename: str,
    inputs: list[SubjectInput],
    policies: RuleEngine,
    waivers: list[Waiver],
    now: datetime,
    have: set[str],
    base_ref: str = "",
    subjects: set[str] | None = None,
) -> PolicyResult:
    """Run every rule whose facts are at hand (``have``: "base", "synth") over ``inputs``, place the
    findings, add validate's errors and apply the waivers.

    With ``subjects``, only the inputs of those subjects are judged (``modelcat review``: what a
    change touches), and only waivers of those subjects are considered, so that a waiver of a
    subject not judged is neither used nor reported unused.
    """
    if subjects is not None:
        inputs = [i for i in inputs if i.subject in subjects]
        waivers = [w for w in waivers if w.subject in subjects]
    run, skipped = [], {}
    for rule in policies.rules:
        missing = [r for r in rule.requires if r not in have]
        if missing:
            skipped[rule.id] = "needs " + " and ".join("--base" if r == "base" else "--synth-dir" for r in missing)
        else:
            run.append(rule)
    findings = locate_findings(evaluate(policies, inputs, run), inputs, loaded.text, filename)
    findings = validation_findings(loaded.errors) + findings
    standing, waived, fired = apply_waivers(
        findings, waivers, now.date(), evaluated={r.id for r in run}, known={r.id for r in policies.rules}
    )
    rules = list(policies.rules) + fired + ([VALIDATE] if loaded.errors else [])
    return PolicyResult(
        rules=rules,
        findings=sorted(standing, key=_order),
        waived=sorted(waived, key=_order),
        skipped=skipped,
        inputs=len(inputs),
        base=base_ref,
        now=now.date().isoformat(),
    )


def _order(f: Finding) -> tuple[int, str, int, str, str]:
    return (0 if f.severity == "deny" else 1, f.file, f.line, f.rule, f.message)
