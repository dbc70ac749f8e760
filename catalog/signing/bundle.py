"""OpenSSF model signing bundles (OMS v1.0) over an artifact's files, made and checked here.

The ``model-signing`` package does the format and the hashing: every file of the artifact (a single
file, or a folder with its external data; nothing ignored) is hashed with sha256 into an in-toto
statement (predicate ``https://model_signing/signature/v1.0``), put in a DSSE envelope signed by our
``ReleaseKey`` over the DSSE pre-authentication encoding, in a Sigstore bundle whose verification
material names the public key by its hint (the sha256 of its PEM). The stock
``model_signing verify key ARTIFACT --signature BUNDLE --public_key PEM`` accepts these bundles.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format
from model_signing import hashing, manifest
from model_signing._signing import sign_sigstore_pb as sigstore_pb
from model_signing._signing import signing as oms
from pydantic import ValidationError
from sigstore_models import intoto as intoto_pb
from sigstore_models.bundle import v1 as bundle_pb
from sigstore_models.common import v1 as common_pb

from catalog.errors import SignatureInvalid, SigningError, UntrustedSigner
from catalog.signing.keys import ReleaseKey, ec_hash, key_hint, public_pem

if TYPE_CHECKING:
    from catalog.signing.trust import PublicKey

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "bundle_hint",
    "key_hint",
    "open_statement",
    "seal_statement",
    "sign_artifact",
    "verify_artifact",
]

BUNDLE_MEDIA_TYPE: Literal["application/vnd.dev.sigstore.bundle.v0.3+json"] = (
    "application/vnd.dev.sigstore.bundle.v0.3+json"
)
_SERIALIZATION = {"method": "files", "hash_type": "sha256"}


def _manifest(path: Path) -> manifest.Manifest:
    """Every file under ``path`` (or the file ``path``) with its sha256: nothing ignored, no symlinks."""
    config = hashing.Config()  # type: ignore[no-untyped-call]  # (its __init__ is not annotated)
    config.set_ignored_paths(paths=[], ignore_git_paths=False).set_allow_symlinks(False)
    try:
        return config.hash(path)
    except (ValueError, OSError) as e:  # a symlink, an unreadable file
        raise SignatureInvalid(str(path), f"cannot hash the artifact's files: {e}") from e


def sign_artifact(path: Path, key: ReleaseKey) -> bytes:
    """The OMS v1.0 bundle (JSON bytes) over every file of the artifact at ``path``, signed by ``key``.

    The signature is checked with the key's public key before the bundle is returned."""
    statement = oms.Payload(_manifest(path)).statement
    return seal_statement(json_format.MessageToJson(statement.pb).encode("utf-8"), key)


def seal_statement(raw: bytes, key: ReleaseKey) -> bytes:
    """A Sigstore bundle (JSON bytes) holding the in-toto statement ``raw`` (its JSON) in a DSSE
    envelope signed by ``key`` over the pre-authentication encoding, the public key named by its hint:
    the shape of every signature modelcat makes (``sign_artifact``'s, ``modelcat attest``'s).

    The signature is checked with the key's public key before the bundle is returned."""
    message = sigstore_pb.pae(raw)
    der = key.sign(message)
    pem = key.public_key_pem()
    public = public_pem(pem, f"the public key of {key!r}")
    try:
        public.verify(der, message, ec.ECDSA(ec_hash(public, repr(key))))
    except InvalidSignature as e:
        raise SigningError(
            repr(key), f"its signature does not verify with its public key (version {key.version})"
        ) from e
    envelope = intoto_pb.Envelope(
        payload=base64.b64encode(raw),
        payload_type=oms._IN_TOTO_JSON_PAYLOAD_TYPE,
        signatures=[intoto_pb.Signature(sig=base64.b64encode(der), keyid="")],
    )
    bundle = bundle_pb.Bundle(
        media_type=BUNDLE_MEDIA_TYPE,
        verification_material=bundle_pb.VerificationMaterial(
            public_key=common_pb.PublicKeyIdentifier(hint=key_hint(pem)), tlog_entries=[]
        ),
        dsse_envelope=envelope,
    )
    return bundle.to_json().encode("utf-8")


def _parse(data: bytes, where: str) -> bundle_pb.Bundle:
    try:
        bundle = bundle_pb.Bundle.from_json(data)
    except (ValidationError, ValueError) as e:
        raise SignatureInvalid(where, f"not a Sigstore bundle: {str(e).splitlines()[0]}") from e
    if bundle.media_type != BUNDLE_MEDIA_TYPE:
        raise SignatureInvalid(where, f"bundle media type {bundle.media_type!r}, expected {BUNDLE_MEDIA_TYPE!r}")
    if bundle.dsse_envelope is None or len(bundle.dsse_envelope.signatures) != 1:
        raise SignatureInvalid(where, "the bundle holds no DSSE envelope with exactly one signature")
    return bundle


def bundle_hint(data: bytes, where: str = "bundle") -> str | None:
    """The hint of the public key a bundle says signed it (None when it names none)."""
    material = _parse(data, where).verification_material
    return material.public_key.hint if material.public_key is not None else None


class _KeyVerifier(sigstore_pb.Verifier):
    """model-signing's verifier of a key-signed bundle, for a key already loaded (no pre-1.0 encoding)."""

    def __init__(self, key: ec.EllipticCurvePublicKey, subject: str) -> None:
        self._key, self._subject = key, subject

    def _verify_bundle(self, bundle: bundle_pb.Bundle) -> tuple[str, bytes]:
        envelope = bundle.dsse_envelope
        if envelope is None:
            raise SignatureInvalid(self._subject, "the bundle holds no DSSE envelope")
        algorithm = ec.ECDSA(ec_hash(self._key, self._subject))
        try:
            self._key.verify(envelope.signatures[0].sig, sigstore_pb.pae(envelope.payload), algorithm)
        except InvalidSignature as e:
            raise SignatureInvalid(
                self._subject, "the bundle's signature does not verify (the bundle was altered)"
            ) from e
        return envelope.payload_type, envelope.payload


def _differences(actual: manifest.Manifest, expected: manifest.Manifest) -> str:
    have = {r.identifier: r.digest.digest_hex for r in actual.resource_descriptors()}
    signed = {r.identifier: r.digest.digest_hex for r in expected.resource_descriptors()}
    parts = [f"{name}: not signed" for name in sorted(set(have) - set(signed))]
    parts += [f"{name}: signed but missing" for name in sorted(set(signed) - set(have))]
    parts += [
        f"{name}: sha256 {have[name][:12]}… but the signature says {signed[name][:12]}…"
        for name in sorted(set(have) & set(signed))
        if have[name] != signed[name]
    ]
    return "; ".join(part if part[0] != "." else "the file" + part[1:] for part in parts)


def _signer(
    parsed: bundle_pb.Bundle, candidates: Sequence[PublicKey], where: str
) -> tuple[PublicKey, str, _KeyVerifier]:
    """The candidate the bundle names by its hint, the bundle's name in messages, and a verifier of
    the candidate's signatures; UntrustedSigner when no candidate is the key named."""
    hint = parsed.verification_material.public_key.hint if parsed.verification_material.public_key else None
    key = next((c for c in candidates if c.hint == hint), None)
    if key is None:
        known = ", ".join(f"{c.name} v{c.version}" for c in candidates) or "none"
        raise UntrustedSigner(where, f"signed by a key none of the trusted keys is (trusted: {known})")
    subject = f"{where} (key {key.name} v{key.version})"
    return key, subject, _KeyVerifier(public_pem(key.pem, f"key {key.name} v{key.version}"), subject)


def open_statement(data: bytes, candidates: Sequence[PublicKey], where: str = "bundle") -> tuple[PublicKey, bytes]:
    """The candidate whose key signed the bundle ``data``, and the in-toto statement (JSON bytes) it
    signed. SignatureInvalid for an altered or unreadable bundle, or one that holds no in-toto
    statement; UntrustedSigner when no candidate is the key the bundle names."""
    parsed = _parse(data, where)
    key, subject, verifier = _signer(parsed, candidates, where)
    payload_type, payload = verifier._verify_bundle(parsed)
    if payload_type != oms._IN_TOTO_JSON_PAYLOAD_TYPE:
        raise SignatureInvalid(subject, f"the envelope holds {payload_type!r}, not an in-toto statement")
    return key, payload


def verify_artifact(path: Path, bundle: bytes, candidates: Sequence[PublicKey], where: str = "bundle") -> PublicKey:
    """The candidate whose key signed ``bundle``, after checking that the bundle covers exactly the
    files at ``path``, byte for byte. SignatureInvalid for other bytes, an altered or unreadable
    bundle; UntrustedSigner when no candidate is the key the bundle names. ``where`` names the
    bundle in messages."""
    parsed = _parse(bundle, where)
    key, subject, verifier = _signer(parsed, candidates, where)
    try:
        expected = verifier.verify(sigstore_pb.Signature(parsed))
    except (ValueError, KeyError, TypeError) as e:  # not an OMS v1.0 statement, or one inconsistent in itself
        raise SignatureInvalid(subject, f"the signed statement is not a model signature: {e}") from e
    kind = {k: expected.serialization_type.get(k) for k in _SERIALIZATION}
    if kind != _SERIALIZATION:
        raise SignatureInvalid(subject, f"signed with serialization {kind}; modelcat verifies per-file sha256")
    differences = _differences(_manifest(path), expected)
    if differences:
        raise SignatureInvalid(subject, f"the signature is for other bytes than {path}: {differences}")
    return key
