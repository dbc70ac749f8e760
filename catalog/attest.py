"""``modelcat attest``: a signed in-toto statement of one version's release.

The statement's subject is the version's artifact (its sha256); its predicate
(``https://modelcat.dev/release/v1``) binds that digest to what git says of the release:

- ``catalog``: the commit the statement was made at (HEAD; the catalog file must be committed) and
  the digest of the catalog file there;
- ``released_from``: the commit that gave the version the share it has, per binding that routes it
  (``routes``), the latest of them: a rollout's decision, a rollback or a change by hand;
- ``metrics``, ``stage`` and the signing ``bundle`` the catalog records for the version;
- ``policy``: the Rego rules' findings for the version's subjects (the version, its model, the
  bindings and applications routing it), judged on the catalog at that commit against the release
  commit's parent, and the digest of the rule files that judged;
- ``rollout``: when the release commit is a decision of a rollout of this version (its promotion),
  that decision and the analysis document it acted on, with the digest its ``Evidence`` trailer names.

It is signed as a DSSE envelope in a Sigstore bundle, the shape of ``modelcat sign``'s bundles
(``catalog.signing.bundle``). ``verify_attestation`` checks the signature against the trusted keys and
derives the git facts again at the commit the statement names: a statement for other bytes, another
release commit, other metrics or another rollout's evidence does not verify.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.domain.models import Catalog, Model, Version
from catalog.domain.rollouts import ROLLOUTS_FOLDER, evidence_digest
from catalog.errors import SignatureInvalid, SigningError, UntrustedSigner, UsageError
from catalog.gitio import resolve_commit
from catalog.policy.check import policy_check
from catalog.policy.contract import policy_files
from catalog.policy.findings import PolicyResult
from catalog.revisions import load_revision
from catalog.rollout.history import binding_history
from catalog.rolloutlog import CommitDecision
from catalog.signing.bundle import key_hint, open_statement, seal_statement
from catalog.signing.keys import open_key
from catalog.signing.trust import PublicKey, trusted_keys
from catalog.signing.verify import find_version
from catalog.validate import validate_file

if TYPE_CHECKING:
    from catalog.vault import Vault

__all__ = [
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Attestation",
    "Release",
    "RouteFact",
    "attest_version",
    "check_statement",
    "policy_decision",
    "release_at",
    "release_statement",
    "statement_bytes",
    "verify_attestation",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://modelcat.dev/release/v1"

# the predicate's fields that git alone decides: verify derives them again at the named commit
DERIVED = (
    "model",
    "version",
    "artifact",
    "bundle",
    "stage",
    "metrics",
    "catalog",
    "released_from",
    "routes",
    "rollout",
)


@dataclass(frozen=True)
class RouteFact:
    """A binding that routes the version, and the commit that gave the version its share there."""

    application: str
    environment: str
    weight: int
    change: CommitDecision

    def as_json(self) -> dict[str, Any]:
        return {
            "application": self.application,
            "environment": self.environment,
            "weight": self.weight,
            "commit": self.change.commit.sha,
            "time": self.change.commit.time,
        }


def _decision_json(change: CommitDecision) -> dict[str, Any]:
    return {
        "commit": change.commit.sha,
        "time": change.commit.time,
        "subject": change.commit.subject,
        "kind": change.kind,
        "decided_by": change.decided_by,
        "decision": change.decision,
    }


@dataclass(frozen=True)
class Release:
    """What git says of a version's release at one commit of the catalog."""

    path: Path
    commit: str
    catalog_digest: str  # sha256 of the catalog file's text (UTF-8) at ``commit``
    catalog: Catalog  # the catalog at ``commit``
    model: Model
    version: Version
    routes: tuple[RouteFact, ...]

    @property
    def subject(self) -> str:
        return f"{self.model.name} {self.version.version}"

    @property
    def released_from(self) -> CommitDecision:
        """The latest of the commits that gave the version its shares."""
        return max((r.change for r in self.routes), key=lambda c: (c.commit.time, c.commit.sha))

    def rollout(self) -> dict[str, Any] | None:
        """The rollout decision that released the version (its promotion), with the analysis it acted on."""
        change = self.released_from
        record = change.record
        if change.kind != "rollout" or record is None:
            return None
        if record.model != self.model.name or record.version != self.version.version:
            return None
        evidence = change.recorded.evidence if change.recorded is not None else None
        return {
            "id": change.rollout_id,
            "record": f"{ROLLOUTS_FOLDER}/{change.rollout_id}.json",
            "application": record.application,
            "decision": change.decision,
            "step": change.step,
            "decided_by": change.decided_by,
            "evidence_ref": change.evidence_ref,
            "evidence_digest": evidence_digest(evidence),
            "evidence": evidence,
        }

    def predicate(self) -> dict[str, Any]:
        """The predicate's fields that git decides (``DERIVED``)."""
        artifact = self.version.artifact
        return {
            "model": self.model.name,
            "version": self.version.version,
            "artifact": {"uri": artifact.uri, "digest": artifact.digest, "size_bytes": artifact.size_bytes},
            "bundle": artifact.bundle.model_dump(mode="json") if artifact.bundle is not None else None,
            "stage": self.version.stage,
            "metrics": dict(self.version.metrics),
            "catalog": {"file": self.path.name, "commit": self.commit, "digest": self.catalog_digest},
            "released_from": _decision_json(self.released_from),
            "routes": [r.as_json() for r in self.routes],
            "rollout": self.rollout(),
        }


def _weight_since(path: Path, application: str, model: str, version: str, commit: str) -> CommitDecision:
    """The commit from which ``version`` has had its present share of ``application``'s binding."""
    (history,), _ = binding_history(path, application, model, commit)
    periods = history.periods
    share = dict(periods[-1].routes).get(version, 0)
    first = len(periods) - 1
    while first > 0 and dict(periods[first - 1].routes).get(version, 0) == share:
        first -= 1
    return periods[first].change


def release_at(path: Path, model: str, version: str, revision: str = "HEAD") -> Release:
    """The release of ``model`` ``version`` as the catalog committed at ``revision`` has it.
    SigningError when no application routes the version there: nothing released it."""
    commit = resolve_commit(path.resolve().parent, revision)
    where = f"{path.name}@{commit[:12]}"
    committed = load_revision(path, commit)
    catalog = committed.valid()
    found, match = find_version(catalog, model, version)
    routes = []
    for app in catalog.applications:
        for binding in app.bindings:
            weight = sum(r.weight for r in binding.routes if binding.model == model and r.version == version)
            if weight > 0:
                change = _weight_since(path, app.name, model, version, commit)
                routes.append(RouteFact(app.name, app.environment, weight, change))
    if not routes:
        raise SigningError(
            f"{model} {version}",
            f"no application routes it in {where}: an attestation names the commit that released it",
        )
    digest = "sha256:" + hashlib.sha256((committed.text or "").encode()).hexdigest()
    return Release(path, commit, digest, catalog, found, match, tuple(routes))


def _policies_digest(folder: Path) -> str:
    """sha256 over the names and bytes of the rule files, settings and waivers that judged."""
    files = [*policy_files(folder), *(p for p in (folder / "settings.yaml", folder / "waivers.yaml") if p.is_file())]
    lines = [f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()}" for p in sorted(files)]
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _parent(release: Release) -> str | None:
    try:
        return resolve_commit(release.path.resolve().parent, release.released_from.commit.sha + "^")
    except UsageError:
        return None  # the first commit: no base, the rules that need one are skipped


def policy_decision(release: Release, policies_dir: Path, now: datetime) -> PolicyResult:
    """The rules over the version's subjects in the catalog at the release's commit, against the
    parent of the commit that released it."""
    name = release.model.name
    subjects = {f"model/{name}", f"version/{name}@{release.version.version}"}
    for route in release.routes:
        subjects |= {f"application/{route.application}", f"binding/{route.application}/{name}"}
    return policy_check(
        release.path,
        policies_dir=policies_dir,
        now=now,
        base_ref=_parent(release),
        revision=release.commit,
        subjects=subjects,
    )


def _policy_json(result: PolicyResult, policies_dir: Path) -> dict[str, Any]:
    def finding(f: Any) -> dict[str, Any]:
        return {"rule": f.rule, "severity": f.severity, "subject": f.subject, "message": f.message, "waived": f.waived}

    return {
        "decision": "allow" if result.ok else "deny",
        "policies_digest": _policies_digest(policies_dir),
        "base": result.base or None,
        "evaluated_on": result.now,
        "rules": sorted(r.id for r in result.rules if r.id not in result.skipped),
        "skipped": dict(sorted(result.skipped.items())),
        "findings": [finding(f) for f in result.findings],
        "waived": [finding(f) for f in result.waived],
    }


def release_statement(release: Release, policy: PolicyResult, policies_dir: Path, now: datetime) -> dict[str, Any]:
    """The in-toto statement (v1) of the release."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"{release.model.name}@{release.version.version}",
                "digest": {"sha256": release.version.artifact.digest.removeprefix("sha256:")},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            **release.predicate(),
            "policy": _policy_json(policy, policies_dir),
            "attested_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }


def _differences(stated: Mapping[str, Any], derived: Mapping[str, Any]) -> list[str]:
    return [name for name in DERIVED if stated.get(name) != derived.get(name)]


def check_statement(path: Path, statement: Mapping[str, Any], source: str) -> Release:
    """The release ``statement`` names, derived again from git at its commit; SignatureInvalid
    naming every field that differs (the subject's digest included)."""
    predicate = statement.get("predicate")
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        raise SignatureInvalid(source, f"not a modelcat release statement (predicate type {PREDICATE_TYPE})")
    if not isinstance(predicate, Mapping) or not isinstance(predicate.get("catalog"), Mapping):
        raise SignatureInvalid(source, "the statement has no catalog commit")
    commit = str(predicate["catalog"].get("commit"))
    try:
        release = release_at(path, str(predicate.get("model")), str(predicate.get("version")), commit)
    except (UsageError, SigningError) as e:
        raise SignatureInvalid(source, f"its release cannot be found in this repository: {e}") from e
    different = _differences(predicate, release.predicate())
    digest = release.version.artifact.digest.removeprefix("sha256:")
    subjects = statement.get("subject")
    if subjects != [{"name": f"{release.model.name}@{release.version.version}", "digest": {"sha256": digest}}]:
        different.insert(0, "subject")
    if different:
        raise SignatureInvalid(
            source,
            f"it does not match {release.subject} as {path.name}@{commit[:12]} records it: "
            + ", ".join(different)
            + " differ",
        )
    return release


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """The payload signed: the statement's canonical JSON."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class Attestation:
    """A signed release statement: the statement, its bundle, and the trust key that signed it."""

    release: Release
    statement: dict[str, Any]
    bundle: bytes
    key: PublicKey


def _environments(release: Release) -> list[str]:
    return list(dict.fromkeys(r.environment for r in release.routes))


def _signer(release: Release, hint: str, vault: Vault | None, subject: str) -> PublicKey:
    """The trust key with ``hint`` that every environment routing the version trusts (at the
    release's commit); UntrustedSigner otherwise."""
    root = release.path.resolve().parent
    signer: PublicKey | None = None
    for environment in _environments(release):
        keys = trusted_keys(release.catalog, environment, root, vault).keys
        signer = next((k for k in keys if k.hint == hint), None)
        if signer is None:
            known = ", ".join(f"{k.name} v{k.version}" for k in keys) or "none"
            raise UntrustedSigner(subject, f"signed by a key {environment} does not trust (trusted: {known})")
    assert signer is not None  # a release has at least one route
    return signer


def attest_version(
    path: Path,
    model: str,
    version: str,
    key_ref: str,
    *,
    policies_dir: Path,
    now: datetime,
    vault: Vault | None = None,
) -> Attestation:
    """The signed release statement of ``model`` ``version`` as committed at HEAD, signed by the key
    ``key_ref`` names (a PEM file, or ``vault://MOUNT/keys/NAME``), which must be trusted by every
    environment that routes the version. UsageError when the catalog file has changes not committed."""
    working = load_revision(path)
    release = release_at(path, model, version, "HEAD")
    if working.text != load_revision(path, release.commit, like=working).text:
        raise UsageError(f"{path} has changes not committed: an attestation names a commit; commit them first")
    statement = release_statement(release, policy_decision(release, policies_dir, now), policies_dir, now)
    key = open_key(key_ref, path.resolve().parent, vault)
    bundle = seal_statement(statement_bytes(statement), key)
    signer = _signer(release, key_hint(key.public_key_pem()), vault, f"{release.subject}'s attestation")
    return Attestation(release, statement, bundle, signer)


def verify_attestation(path: Path, data: bytes, source: str, vault: Vault | None = None) -> Attestation:
    """Check an attestation against the catalog's trust policy and its git history: signed by a key
    of the policy, the statement's release derived again at its commit (``check_statement``), the
    signer trusted by every environment routing the version there. SignatureInvalid or
    UntrustedSigner naming ``source`` when it does not hold."""
    catalog = validate_file(path).raise_for_errors()
    candidates = trusted_keys(catalog, None, path.resolve().parent, vault).keys
    key, payload = open_statement(data, candidates, source)
    try:
        statement = json.loads(payload)
    except ValueError as e:
        raise SignatureInvalid(source, f"the signed payload is not JSON: {e}") from e
    if not isinstance(statement, dict):
        raise SignatureInvalid(source, "the signed payload is not an in-toto statement")
    release = check_statement(path, statement, source)
    signer = _signer(release, key.hint, vault, source)
    return Attestation(release, statement, data, signer)
