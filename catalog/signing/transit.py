"""A release key held in Vault Transit: Vault signs, the private key never leaves it.

``TransitKey`` is a ``ReleaseKey``: ``sign`` sends the message to Vault (SHA-256 for an ecdsa-p256
key, SHA-384 for ecdsa-p384, asn1 marshaling, so the answer is the DER signature a bundle carries),
and learns from the answer's ``vault:vN:`` prefix which key version signed; ``version`` and
``public_key_pem()`` then describe that version (the public key as Vault shows it). Vault's failures
arrive as the ``VaultError`` subclasses of ``catalog.vault``.
"""

from __future__ import annotations

from catalog.domain.vault_refs import TransitRef
from catalog.errors import SigningError
from catalog.vault import HashAlgorithm, TransitKeyInfo, Vault

__all__ = ["SIGNING_TYPES", "TransitKey"]

# The Transit key types a release key may have, with the hash Vault is asked to sign with.
SIGNING_TYPES: dict[str, HashAlgorithm] = {"ecdsa-p256": "sha2-256", "ecdsa-p384": "sha2-384"}


class TransitKey:
    """The Transit key ``name`` at ``mount`` (``vault://MOUNT/keys/NAME``), signing through ``vault``."""

    def __init__(self, vault: Vault, mount: str, name: str) -> None:
        self.vault = vault
        self.ref = TransitRef(mount, name)
        self._info: TransitKeyInfo | None = None
        self._signed_with: int | None = None

    def __repr__(self) -> str:
        return f"TransitKey({self.ref})"

    @property
    def version(self) -> int:
        """The version that made the last signature; before any, the latest (the one Vault signs with)."""
        return self._signed_with if self._signed_with is not None else self._key_info().latest_version

    def public_key_pem(self) -> bytes:
        """The public key of ``version``, as Vault shows it (read again if the key rotated meanwhile)."""
        version = self.version
        pem = self._key_info().public_keys.get(version)
        if pem is None:
            pem = self._key_info(again=True).public_keys.get(version)
        if pem is None:
            raise SigningError(str(self.ref), f"Vault shows no public key for version {version}")
        return pem

    def sign(self, message: bytes) -> bytes:
        hash_algorithm = SIGNING_TYPES[self._key_info().type]
        version, der = self.vault.transit_sign(self.ref.mount, self.ref.name, message, hash_algorithm)
        self._signed_with = version
        return der

    def _key_info(self, again: bool = False) -> TransitKeyInfo:
        if self._info is None or again:
            info = self.vault.transit_public_keys(self.ref.mount, self.ref.name)
            if info.type not in SIGNING_TYPES:
                raise SigningError(
                    str(self.ref), f"a Transit key of type {info.type}; release keys are ecdsa-p256 or ecdsa-p384"
                )
            self._info = info
        return self._info
