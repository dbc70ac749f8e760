"""The keys that sign releases: a local EC PEM (development) or a Vault Transit key (``transit.py``).

A ``ReleaseKey`` signs a message (the DSSE pre-authentication encoding of the statement) with ECDSA,
SHA-256 for a P-256 key and SHA-384 for a P-384 key, and answers with the DER signature, which is
what an OpenSSF model signing bundle carries.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.errors import SigningError

if TYPE_CHECKING:
    from catalog.vault import Vault

__all__ = ["CURVES", "PemKey", "ReleaseKey", "ec_hash", "key_hint", "open_key", "public_pem"]

# The curves a release key may use, with the hash its signatures take (Vault Transit's ecdsa-p256/p384).
CURVES: dict[str, hashes.HashAlgorithm] = {"secp256r1": hashes.SHA256(), "secp384r1": hashes.SHA384()}


class ReleaseKey(Protocol):
    """A key that signs releases. ``version`` and ``public_key_pem()`` describe the key that made the
    last signature (a Vault Transit key learns which of its versions signed only by signing)."""

    @property
    def version(self) -> int: ...

    def public_key_pem(self) -> bytes:
        """The public key (SubjectPublicKeyInfo PEM) that verifies the signatures ``sign`` makes."""
        ...

    def sign(self, message: bytes) -> bytes:
        """A DER ECDSA signature over ``message`` (SHA-256 for P-256, SHA-384 for P-384)."""
        ...


def ec_hash(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey, subject: str) -> hashes.HashAlgorithm:
    """The hash an EC key of a supported curve signs with; SigningError naming ``subject`` otherwise."""
    algorithm = CURVES.get(key.curve.name)
    if algorithm is None:
        raise SigningError(subject, f"an EC key on curve {key.curve.name}; release keys are EC P-256 or P-384")
    return algorithm


def public_pem(data: bytes, subject: str) -> ec.EllipticCurvePublicKey:
    """The EC P-256/P-384 public key in PEM ``data``; SigningError naming ``subject`` for anything else."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise SigningError(subject, f"not a PEM public key ({e})") from e
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningError(subject, f"a public key of type {_kind(key)}; release keys are EC P-256 or P-384")
    ec_hash(key, subject)
    return key


def key_hint(pem: bytes) -> str:
    """The bundle's name for a public key: sha256 (hex) of its SubjectPublicKeyInfo PEM, as re-encoded
    by ``cryptography`` (so any PEM spelling of one key gives one hint)."""
    key = serialization.load_pem_public_key(pem)
    canonical = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(canonical).hexdigest()


def _kind(key: object) -> str:
    name = type(key).__name__.removeprefix("_")
    for kind in ("RSA", "DSA", "Ed25519", "Ed448", "X25519", "X448", "DH"):
        if name.startswith(kind):
            return kind
    return name


class PemKey:
    """A private EC P-256 or P-384 key in an unencrypted PEM file (for development: the key is on disk)."""

    version = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SigningError(str(path), f"cannot read the key: {e.strerror or e}") from e
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError as e:  # encrypted, and no password given
            raise SigningError(str(path), "the private key is encrypted; give an unencrypted PEM") from e
        except ValueError as e:
            raise SigningError(str(path), f"not a PEM private key ({e})") from e
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SigningError(str(path), f"a private key of type {_kind(key)}; release keys are EC P-256 or P-384")
        self._hash = ec_hash(key, str(path))
        self._key = key

    def __repr__(self) -> str:
        return f"PemKey({self.path})"

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(self._hash))


def open_key(ref: str, root: Path, vault: Vault | None = None) -> ReleaseKey:
    """The key ``ref`` names: ``vault://MOUNT/keys/NAME`` (a Vault Transit key; ``vault`` or one from
    the environment), else a PEM file's path (relative paths from ``root``, the catalog's folder)."""
    if ref.startswith("vault://"):
        from catalog.domain.vault_refs import parse_transit_ref

        try:
            transit = parse_transit_ref(ref)
        except ValueError as e:
            raise SigningError(ref, str(e)) from e
        from catalog.signing.transit import TransitKey

        if vault is None:
            from catalog.vault import Vault

            vault = Vault.from_env()
        key: ReleaseKey = TransitKey(vault, transit.mount, transit.name)
        return key
    if "://" in ref:
        raise SigningError(ref, "not a key reference: give a PEM file's path or vault://MOUNT/keys/NAME")
    path = Path(ref)
    return PemKey(path if path.is_absolute() else root / path)
