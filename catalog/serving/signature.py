"""A replica's release check: the version's signing bundle verified against the trusted keys
before anything listens (fail closed).

The keys come as a trust file (JSON, public: ``{"required": bool, "keys": [{"name", "version",
"pem"}]}``), written by whoever resolved the trust policy (the provider at create, from the
repository's PEM files and Vault Transit); the bundle as a file whose sha256 must be the one the
catalog records. ``verify_release`` says who signed (``catalog.signing.verify.Verified``), or raises the ``SigningError`` that keeps
the replica from listening:

- ``SignatureMissing`` when signatures are required and there is no bundle;
- ``SignatureInvalid`` for a bundle that is not the catalog's (digest), unreadable, tampered
  with, or over other bytes;
- ``UntrustedSigner`` when no trusted key (at or above its minimum version) made the signature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.errors import ArtifactError, SignatureInvalid, SignatureMissing, UsageError

if TYPE_CHECKING:  # model_signing loads only when there is a signature to check
    from catalog.signing.trust import PublicKey
    from catalog.signing.verify import Verified

__all__ = [
    "ReplicaTrust",
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


@dataclass(frozen=True, slots=True)
class ReplicaTrust:
    """Whether the replica serves only signed bytes, and the public keys (every allowed version) it accepts."""

    required: bool
    keys: tuple[PublicKey, ...]


def trust_document(required: bool, keys: Sequence[PublicKey]) -> bytes:
    """The trust file's bytes (deterministic: keys in the order given)."""
    entries = [{"name": k.name, "version": k.version, "pem": _text(k.pem)} for k in keys]
    return json.dumps({"required": required, "keys": entries}, indent=2).encode()


def _text(pem: bytes | str) -> str:
    return pem.decode("ascii") if isinstance(pem, bytes) else pem


def resolve_keys(blocks: Sequence[Mapping[str, Any]]) -> list[PublicKey]:
    """The public keys of an endpoint's ``trusted_key`` blocks (``catalog.domain.bodies.TrustedKeyBody``)
    at or above their min_version: a PEM is version 1; a Vault Transit key has each version Vault holds
    (read through ``catalog.signing.trust.key_versions``, from VAULT_ADDR and VAULT_TOKEN)."""
    from catalog.domain.models import TrustedKey
    from catalog.signing.keys import key_hint, public_pem
    from catalog.signing.trust import PublicKey, key_versions

    keys: list[PublicKey] = []
    for block in blocks:
        name, minimum = str(block["name"]), int(block.get("min_version") or 1)
        if block.get("pem"):
            pem = str(block["pem"]).encode("ascii")
            public_pem(pem, f"trusted key {name}")
            versions: Sequence[PublicKey] = [PublicKey(name, 1, pem, key_hint(pem))]
        else:
            versions = key_versions(TrustedKey(name=name, vault=block.get("vault"), min_version=minimum), Path(), None)
        keys += [key for key in versions if key.version >= minimum]
    return keys


def read_trust(path: Path) -> ReplicaTrust:
    """The trust file at ``path``; UsageError naming it when it is unreadable or malformed."""
    from catalog.signing.bundle import key_hint
    from catalog.signing.trust import PublicKey

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        keys = tuple(
            PublicKey(str(k["name"]), int(k["version"]), k["pem"].encode("ascii"), key_hint(k["pem"].encode("ascii")))
            for k in doc["keys"]
        )
        return ReplicaTrust(bool(doc["required"]), keys)
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
    artifact: Path, bundle: Path | None, bundle_digest: str | None, trust: ReplicaTrust, subject: str
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
    key = verify_artifact(artifact, data, trust.keys, where=f"{subject} (bundle {digest[:19]})")
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
    trust = read_trust(trust_file) if trust_file is not None else ReplicaTrust(False, ())
    return verify_release(artifact, bundle, bundle_digest, trust, f"{model} {version}")
