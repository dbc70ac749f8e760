"""``modelcat review BASE``: everything a pull request to the catalog needs judged, in one pass.

1. validate the head catalog (the working tree's models.yaml): a schema error stops the review;
2. read the base revision's catalog and diff the two in model terms (``catalog.revisions``; a base
   without the file, or an invalid one, is an empty catalog);
3. verify only the artifacts the change touches (``catalog.revisions.Change.touched``: new
   versions, new bytes or another signature for a version, and every version whose artifact files
   differ in git, such as a blob changed in place): the set ``verify --changed-since`` checks; and,
   cryptographically, the release signatures the change touches (``catalog.signing.checks``): each
   touched version that carries a bundle, and each signed version that an environment requiring
   signatures starts serving or judges by other keys, for that environment
   (``catalog.signing.verify.verify_version``; an unsigned version there is MC014's);
4. build both sides' resources without the CDK app (``catalog.synth.resources``) and compare
   them: the blast radius per stack, the plan summary of the change;
5. run the policies on what the change touches: each subject (model, version, application,
   binding) whose policy input differs from the base's, every version the change deletes, and
   every resource the blast radius creates, updates or replaces; every subject when the policies
   folder (rules, settings, waivers) differs from the base. Unchanged subjects were judged
   when they changed; ``modelcat policy check`` judges the whole catalog (e.g. nightly, for ages
   that grow without a change).
6. list the commits BASE..HEAD that a rollout or a rollback made (``catalog.rolloutlog``: their
   trailers), each as such: "rollout R step 2 of 4 (step), evidence: promote on 1,251 units ...".

The outcome (``Review``) carries everything the renderings need; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from catalog.artifacts.verify import VerifyResult, select_versions, verify_versions
from catalog.domain.deployment import environments
from catalog.domain.diff import CatalogDiff
from catalog.domain.models import Catalog
from catalog.domain.problems import Problem
from catalog.errors import UsageError
from catalog.gitio import folder_changed_since
from catalog.policy.check import (
    VALIDATE,
    LoadedCatalog,
    artifact_observer,
    judge,
    load_policies,
    locate_findings,
    validation_findings,
)
from catalog.policy.findings import Finding, PolicyResult, RuleInfo, SubjectInput
from catalog.policy.inputs import base_versions_of, catalog_inputs
from catalog.policy.synth_inputs import block_inputs
from catalog.policy.waivers import load_waivers
from catalog.revisions import Change, Revision, change_since, check_revision, load_revision
from catalog.rolloutlog import CommitDecision, catalog_commits
from catalog.signing.checks import SignatureCheck, signatures_to_verify, verify_signatures
from catalog.synth.blast import BlastRadius, blast_radius
from catalog.synth.resources import StackResources, synthesize_resources

__all__ = [
    "SIGNATURE",
    "VERIFY",
    "Review",
    "changed_subjects",
    "models_to_judge",
    "review",
]

VERIFY = RuleInfo(
    "VERIFY",
    "Artifact verifies",
    "deny",
    ("version",),
    name="ArtifactVerifies",
    description="Each artifact the change adds or alters is fetched from its store and matches what the catalog "
    "declares: its sha256 digest and size, a valid ONNX model with the declared signature. Store the bytes the "
    "catalog names (modelcat register) or fix the declared digest; run modelcat verify to check. It cannot be "
    "waived.",
)


SIGNATURE = RuleInfo(
    "SIGNATURE",
    "Release signature verifies",
    "deny",
    ("version",),
    name="ReleaseSignatureVerifies",
    description="Each signature the change touches (a version's bundle added or changed, or a signed version an "
    "environment requiring signatures starts serving or judges by other keys) verifies against the artifact's "
    "bytes: the bundle covers exactly its files, is signed by a key that environment trusts at or above the key's "
    "min_version, and by the key and version models.yaml records. Sign the version again (modelcat sign) with a "
    "trusted key. It cannot be waived.",
)


@dataclass
class Review:
    """What ``modelcat review`` found. ``exit_code``: 0 nothing blocks, 1 something does."""

    base: str
    file: str
    problems: list[Problem] = field(default_factory=list)  # the head's validation errors
    notes: list[str] = field(default_factory=list)
    diff: CatalogDiff | None = None
    blast: BlastRadius | None = None
    verified: list[VerifyResult] = field(default_factory=list)
    signatures: list[SignatureCheck] = field(default_factory=list)
    policy: PolicyResult | None = None
    subjects: int = 0  # policy inputs judged
    rollout_commits: list[CommitDecision] = field(default_factory=list)  # BASE..HEAD by a rollout or rollback

    @property
    def failed_artifacts(self) -> list[VerifyResult]:
        return [r for r in self.verified if not r.ok]

    @property
    def failed_signatures(self) -> list[SignatureCheck]:
        return [c for c in self.signatures if not c.ok]

    @property
    def blocking(self) -> list[str]:
        """One line per thing that blocks the change (a validation error counts once)."""
        out = [f"{p.file}:{p.line}: {p.message}" for p in self.problems]
        out += [f"{a.model} {a.version}: {a.message}" for a in self.failed_artifacts]
        out += [f"{c.subject}: {c.message}" for c in self.failed_signatures]
        if self.policy is not None:
            out += [
                f"{f.rule} {f.message}"
                for f in self.policy.denies
                if f.rule not in ("VALIDATE", VERIFY.id, SIGNATURE.id)
            ]
        return out

    @property
    def ok(self) -> bool:
        """Nothing blocks: valid, every touched artifact and signature verified, no policy denies."""
        return (
            not self.problems
            and not self.failed_artifacts
            and not self.failed_signatures
            and (self.policy is None or self.policy.ok)
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def changed_subjects(head_inputs: list[SubjectInput], base_inputs: list[SubjectInput]) -> set[str]:
    """Subjects whose input (everything the rules see about them) is new or differs from the base's."""
    before = {i.subject: i.document for i in base_inputs}
    return {i.subject for i in head_inputs if before.get(i.subject) != i.document}


def models_to_judge(base: Catalog | None, head: Catalog) -> set[str] | None:
    """The models whose model and version inputs can differ between the sides: all (None) unless
    the base was parsed reusing the head's models; then those that are not one object on both sides
    (a version's input reads only its model, the catalog's limits and the shared base facts)."""
    if base is None or base.limits != head.limits:
        return None
    on_base = {m.name: m for m in base.models}
    return {m.name for m in head.models if on_base.get(m.name) is not m} | (
        on_base.keys() - {m.name for m in head.models}
    )


def _resource_inputs(head: StackResources, blast: BlastRadius, catalog: Catalog) -> list[SubjectInput]:
    """Policy inputs of the resources an apply would create, update or replace, placed on the
    models.yaml entry of the application each serves (the catalog line that makes them)."""
    changes = {(s.stack, c.type, c.id): c for s in blast.stacks for c in s.changes if c.action != "delete"}
    apps = {a.name: i for i, a in enumerate(catalog.applications)}
    inputs = []
    for stack, kinds in head.items():
        chosen: dict[str, dict[str, object]] = {}
        for kind, bodies in kinds.items():
            picked: dict[str, object] = {rid: body for rid, body in bodies.items() if (stack, kind, rid) in changes}
            if picked:
                chosen[kind] = picked
        for item in block_inputs(stack, {"resource": chosen}) if chosen else []:
            _, _, address = item.subject.split("/", 2)
            kind, _, rid = address.partition(".")
            app = changes[(stack, kind, rid)].application
            inputs.append(replace(item, loc=("applications", apps[app]) if app in apps else ()))
    return inputs


def _version_findings(
    rule: RuleInfo, failed: list[tuple[str, str, str]], catalog: Catalog
) -> tuple[list[Finding], list[SubjectInput]]:
    """Failures of versions, (model, version, message), as denies of ``rule`` (VERIFY, SIGNATURE),
    with inputs that place them on their version's entry."""
    index = {
        (m.name, v.version): ("models", i, "versions", j)
        for i, m in enumerate(catalog.models)
        for j, v in enumerate(m.versions)
    }
    findings, places = [], []
    for model, version, message in failed:
        subject = f"version/{model}@{version}"
        findings.append(Finding(rule.id, rule.title, "deny", message, "version", subject))
        places.append(SubjectInput("version", subject, {}, index.get((model, version), ())))
    return findings, places


def _base_notes(path: Path, base: str, change: Change) -> list[str]:
    """What the review says about a base that is not a catalog to compare with."""
    if not change.base.present:
        return [f"{path.name} does not exist at {base}: every entry is new"]
    if change.base.catalog is None:
        return [f"{path}@{base} is not a valid catalog: compared as empty, base-only rules not evaluated"]
    return []


def review(
    path: Path,
    base: str,
    *,
    policies_dir: Path,
    now: datetime,
    target: str | None = None,
    verify: bool = True,
    proposed: Revision | None = None,
) -> Review:
    """Review the change from ``base`` (a git revision) to the working tree's ``path`` (or to
    ``proposed``, an edit of it not written yet: ``catalog.revisions.proposed_revision``)."""
    check_revision(base)
    policies, settings = load_policies(policies_dir)  # a missing or broken rule stops the review first
    head_revision = proposed if proposed is not None else load_revision(path)
    result = Review(base=base, file=str(path))
    if head_revision.catalog is None:
        result.problems = head_revision.errors
        findings = validation_findings(result.problems)
        result.policy = PolicyResult(rules=[VALIDATE], findings=findings, base=base, now=now.date().isoformat())
        return result
    head = head_revision.catalog
    result.problems = head_revision.errors  # cross-reference errors: reported, and the rest still runs
    text = head_revision.text or ""
    change = change_since(head_revision, base)
    base_catalog = change.base.catalog
    result.notes += _base_notes(path, base, change) + change.notes()
    result.diff = change.diff
    result.rollout_commits = [c for c in catalog_commits(path, f"{base}..HEAD") if not c.by_hand]

    if verify:
        chosen = select_versions(head, only=set(change.touched))
        result.verified = verify_versions(head, chosen, path.resolve().parent) if chosen else []
        failed = {(a.model, a.version) for a in result.failed_artifacts}
        checks = signatures_to_verify(base_catalog, head, change.touched)
        result.signatures = verify_signatures(head, path.resolve().parent, [c for c in checks if c[:2] not in failed])

    resources_ok = not result.problems
    before: StackResources = {}
    after: StackResources = {}
    if resources_ok:
        try:
            before = synthesize_resources(base_catalog, path, target)
            after = synthesize_resources(head, path, target)
        except UsageError as e:
            result.notes.append(f"no blast radius: {e}")
            resources_ok = False
    if resources_ok:
        envs = [*(environments(base_catalog) if base_catalog else []), *environments(head)]
        result.blast = blast_radius(before, after, envs)

    facts = base_versions_of(base_catalog)
    observe = artifact_observer(path.resolve().parent)  # the same facts for the same URI on both sides
    judged = models_to_judge(base_catalog, head)
    rules_changed = folder_changed_since(policies_dir, base)
    if rules_changed:  # other rules or settings judge everything anew
        judged = None
        result.notes.append(f"{policies_dir} differs from {base}: every subject is judged")
    head_inputs = catalog_inputs(head, now=now, settings=settings, base=facts, observe=observe, models=judged)
    base_inputs = (
        catalog_inputs(base_catalog, now=now, settings=settings, base=facts, observe=observe, models=judged)
        if base_catalog
        else []
    )
    subjects = {i.subject for i in head_inputs} if rules_changed else changed_subjects(head_inputs, base_inputs)
    inputs = head_inputs
    have = {"base"}
    if result.blast is not None:
        resource_inputs = _resource_inputs(after, result.blast, head)
        inputs = head_inputs + resource_inputs
        subjects |= {i.subject for i in resource_inputs}
        have.add("synth")
    loaded = LoadedCatalog(text, head, result.problems)
    policy = judge(loaded, str(path), inputs, policies, load_waivers(policies_dir), now, have, base, subjects)
    if result.failed_signatures:
        failures = [(c.model, c.version, f"{c.subject}: {c.message}") for c in result.failed_signatures]
        findings, places = _version_findings(SIGNATURE, failures, head)
        policy.findings = locate_findings(findings, places, text, str(path)) + policy.findings
        policy.rules.append(SIGNATURE)
    if result.failed_artifacts:
        failures = [(a.model, a.version, f"{a.model} {a.version}: {a.message}") for a in result.failed_artifacts]
        findings, places = _version_findings(VERIFY, failures, head)
        policy.findings = locate_findings(findings, places, text, str(path)) + policy.findings
        policy.rules.append(VERIFY)
    result.policy = policy
    result.subjects = policy.inputs
    return result
