"""A replica's release check: the version's signing bundle verified against the trusted keys
before anything listens (fail closed).

The keys come as a trust file (JSON, public: ``{"required": bool, "keys": [{"name", "version",
"pem"}], "revoked": [...]}``, a ``catalog.signing.trust.TrustedKeys``), written by whoever resolved
the trust policy (the provider at create, the kubernetes init container: PEM text and Vault Transit
key versions); the bundle as a file whose sha256 must be the one the catalog records.
``verify_release`` says who signed (``catalog.signing.verify.Verified``), or raises the
``SigningError`` that keeps the replica from listening:

- ``SignatureMissing`` when signatures are required and there is no bundle;
- ``SignatureInvalid`` for a bundle that is not the catalog's (digest), unreadable, tampered
  with, or over other bytes;
- ``UntrustedSigner`` when no trusted key made the signature, or a revoked version of one (below
  its min_version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.errors import ArtifactError, SignatureInvalid, SignatureMissing, UntrustedSigner, UsageError

if TYPE_CHECKING:  # model_signing loads only when there is a signature to check
    from catalog.signing.trust import PublicKey, TrustedKeys
    from catalog.signing.verify import Verified

__all__ = [
    "check_release",
    "read_trust",
    "resolve_keys",
    "signature_info",
    "signature_text",
    "trust_document",
    "verify_release",
]


def signature_info(signed: Verified | None) -> dict[str, Any] | None:
    """Who signed the bytes a replica serves, as its metadata and its first line say it (None: unsigned)."""
    if signed is None:
        return None
    return {"key": signed.key, "key_version": signed.key_version, "bundle_digest": signed.bundle_digest,
            "verified": True}  # fmt: skip


def signature_text(info: Mapping[str, Any] | None) -> str:
    """ "signed by KEY vN, verified" for a replica's ``signature_info``, else "unsigned"."""
    if not info or not info.get("verified"):
        return "unsigned"
    return f"signed by {info.get('key')} v{info.get('key_version')}, verified"


def trust_document(trust: TrustedKeys) -> bytes:
    """The trust file's bytes (deterministic: keys in the order given)."""

    def entries(keys: Sequence[PublicKey]) -> list[dict[str, Any]]:
        return [{"name": k.name, "version": k.version, "pem": k.pem.decode("ascii")} for k in keys]

    doc = {"required": trust.required, "keys": entries(trust.keys), "revoked": entries(trust.revoked)}
    return json.dumps(doc, indent=2).encode()


def resolve_keys(blocks: Sequence[Mapping[str, Any]], required: bool) -> TrustedKeys:
    """The public keys of an endpoint's ``trusted_key`` blocks (``catalog.domain.bodies.TrustedKeyBody``):
    a PEM is version 1; a Vault Transit key has each version Vault holds (read through
    ``catalog.signing.trust.key_versions``, from VAULT_ADDR and VAULT_TOKEN). Versions below a key's
    min_version are kept apart as revoked (to say so, rather than "unknown")."""
    from catalog.domain.models import TrustedKey
    from catalog.signing.keys import key_hint, public_pem
    from catalog.signing.trust import PublicKey, TrustedKeys, key_versions

    keys: list[PublicKey] = []
    revoked: list[PublicKey] = []
    for block in blocks:
        name, minimum = str(block["name"]), int(block.get("min_version") or 1)
        if block.get("pem"):
            pem = str(block["pem"]).encode("ascii")
            public_pem(pem, f"trusted key {name}")
            versions: Sequence[PublicKey] = [PublicKey(name, 1, pem, key_hint(pem))]
        else:
            versions = key_versions(TrustedKey(name=name, vault=block.get("vault"), min_version=minimum), Path(), None)
        for key in versions:
            (keys if key.version >= minimum else revoked).append(key)
    return TrustedKeys(required, tuple(keys), tuple(revoked))


def read_trust(path: Path) -> TrustedKeys:
    """The trust file at ``path``; UsageError naming it when it is unreadable or malformed."""
    from catalog.signing.keys import key_hint
    from catalog.signing.trust import PublicKey, TrustedKeys

    def loaded(entries: Sequence[Mapping[str, Any]]) -> tuple[PublicKey, ...]:
        pems = [(e, str(e["pem"]).encode("ascii")) for e in entries]
        return tuple(PublicKey(str(e["name"]), int(e["version"]), pem, key_hint(pem)) for e, pem in pems)

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return TrustedKeys(bool(doc["required"]), loaded(doc["keys"]), loaded(doc.get("revoked") or []))
    except OSError as e:
        raise UsageError(f"cannot read the trust file {path}: {e.strerror or e}") from e
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"the trust file {path} is not a modelcat trust file ({type(e).__name__}: {e})") from e


def _read_bundle(path: Path, digest: str | None, subject: str) -> bytes:
    from catalog.artifacts.hashing import read_verified
    from catalog.signing.verify import MAX_BUNDLE_BYTES

    if digest is None:
        raise UsageError("--bundle needs --bundle-digest: the digest the catalog records for the bundle")
    try:
        return read_verified(str(path), digest, MAX_BUNDLE_BYTES, f"its signing bundle {path}")
    except ArtifactError as e:  # unreadable, too large, or not the catalog's bundle
        raise SignatureInvalid(subject, str(e)) from e


def verify_release(
    artifact: Path, bundle: Path | None, bundle_digest: str | None, trust: TrustedKeys, subject: str
) -> Verified | None:
    """Verify ``artifact`` against ``bundle`` and ``trust`` (``subject`` names the version in
    errors): who signed it, or None for an unsigned version where signatures are not required.
    A bundle that is present is always checked: a bad one never serves."""
    if bundle is None:
        if trust.required:
            raise SignatureMissing(subject, "its environment requires signatures and the version has no bundle")
        return None
    from catalog.signing.bundle import verify_artifact
    from catalog.signing.verify import Verified

    data = _read_bundle(bundle, bundle_digest, subject)
    digest = str(bundle_digest)
    key = verify_artifact(artifact, data, trust.keys + trust.revoked, where=f"{subject} (bundle {digest[:19]})")
    if key in trust.revoked:
        raise UntrustedSigner(
            subject, f"signed by {key.name} v{key.version}, a revoked version (below its min_version)"
        )
    return Verified(key.name, key.version, digest)


def check_release(
    artifact: Path, bundle: Path | None, bundle_digest: str | None, trust_file: Path | None, model: str, version: str
) -> Verified | None:
    """What a serving command runs before it loads the model: ``verify_release`` with the trust file
    (none given: nothing is required and no key is trusted, so a bundle cannot be checked: UsageError)."""
    if bundle is not None and trust_file is None:
        raise UsageError("--bundle needs --trust: a signing bundle is verified against the trusted keys")
    if bundle is None and bundle_digest is not None:
        raise UsageError("--bundle-digest needs --bundle")
    from catalog.signing.trust import TrustedKeys

    trust = read_trust(trust_file) if trust_file is not None else TrustedKeys(False, ())
    return verify_release(artifact, bundle, bundle_digest, trust, f"{model} {version}")
