"""Verify a version's release signature against the trust policy of an environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.artifacts.repository import store_for_uri
from catalog.artifacts.stores.base import Fetched
from catalog.domain.models import Catalog, Model, Version
from catalog.domain.trust import environment_keys
from catalog.errors import (
    ArtifactTooLarge,
    DigestMismatch,
    SignatureInvalid,
    SignatureMissing,
    StoreError,
    StoreUnreachable,
    UntrustedSigner,
    UsageError,
)
from catalog.signing.bundle import bundle_hint, verify_artifact
from catalog.signing.trust import trusted_keys

if TYPE_CHECKING:
    from catalog.vault import Vault

__all__ = ["MAX_BUNDLE_BYTES", "Verified", "fetch_version", "find_version", "verify_version"]

MAX_BUNDLE_BYTES = 16 << 20  # a bundle lists one digest per file: far below this


@dataclass(frozen=True)
class Verified:
    """Who signed: the trust key's name and version, and the digest of the bundle that says so."""

    key: str
    key_version: int
    bundle_digest: str


def find_version(catalog: Catalog, model: str, version: str) -> tuple[Model, Version]:
    """The model and version named; UsageError naming what exists when there is none."""
    entry = next((m for m in catalog.models if m.name == model), None)
    if entry is None:
        raise UsageError(f"no model {model!r} in the catalog (models: {', '.join(m.name for m in catalog.models)})")
    found = next((v for v in entry.versions if v.version == version), None)
    if found is None:
        raise UsageError(f"{model} has no version {version} (versions: {', '.join(v.version for v in entry.versions)})")
    return entry, found


def fetch_version(catalog: Catalog, root: Path, model: Model, version: Version) -> Fetched:
    """A verified local copy of the version's artifact (its digest and size checked)."""
    artifact = version.artifact
    limit = model.max_artifact_bytes or catalog.limits.max_artifact_bytes
    return store_for_uri(artifact.uri, root).fetch(artifact.uri, artifact.digest, artifact.size_bytes, limit)


def verify_version(
    catalog: Catalog, root: Path, model: str, version: str, environment: str | None, vault: Vault | None = None
) -> Verified | None:
    """Check the signature of ``model`` ``version`` for ``environment`` (None: against every key of
    the trust policy, nothing required): the artifact and its bundle are fetched by digest, the bundle
    must cover exactly the artifact's files and be signed by a key the environment trusts, at or above
    the key's min_version, and be the key models.yaml records. None when the version is unsigned and
    the environment does not require signatures. ``root`` is the catalog's folder."""
    entry, found = find_version(catalog, model, version)
    subject = f"{model} {version}"
    record = found.artifact.bundle
    if record is None:
        if environment_keys(catalog, environment).required:
            raise SignatureMissing(subject, f"environment {environment} requires signed versions and this one has none")
        return None
    try:
        bundle = store_for_uri(record.uri, root).fetch_blob(record.uri, record.digest, MAX_BUNDLE_BYTES)
    except StoreUnreachable:
        raise
    except (DigestMismatch, ArtifactTooLarge) as e:
        raise SignatureInvalid(subject, f"its bundle is not the one models.yaml records: {e}") from e
    except StoreError as e:
        raise SignatureMissing(subject, f"its bundle cannot be read: {e}") from e
    trust = trusted_keys(catalog, environment, root, vault)
    fetched = fetch_version(catalog, root, entry, found)
    where = f"{subject} bundle {record.uri}"
    try:
        signer = verify_artifact(fetched.root, bundle, trust.keys + trust.revoked, where=where)
    except UntrustedSigner:
        _name_the_signer(catalog, root, vault, environment, bundle, where)
        raise
    if signer in trust.revoked:
        minimum = next((k.min_version for k in environment_keys(catalog, environment).keys if k.name == signer.name), 1)
        raise UntrustedSigner(
            subject, f"signed by {signer.name} v{signer.version}, a revoked version (min_version {minimum})"
        )
    if (signer.name, signer.version) != (record.key, record.key_version):
        raise SignatureInvalid(
            subject,
            f"signed by {signer.name} v{signer.version}, but models.yaml says {record.key} v{record.key_version}",
        )
    return Verified(signer.name, signer.version, record.digest)


def _name_the_signer(
    catalog: Catalog, root: Path, vault: Vault | None, environment: str | None, bundle: bytes, where: str
) -> None:
    """When a key of the policy that ``environment`` does not trust signed, say which (UntrustedSigner)."""
    if environment is None:
        return
    hint = bundle_hint(bundle, where)
    signer = next((k for k in trusted_keys(catalog, None, root, vault).keys if k.hint == hint), None)
    if signer is not None:
        trusted = ", ".join(k.name for k in environment_keys(catalog, environment).keys) or "none"
        raise UntrustedSigner(
            where, f"signed by {signer.name} v{signer.version}, a key environment {environment} does not trust "
            f"(it trusts: {trusted})"
        )  # fmt: skip
