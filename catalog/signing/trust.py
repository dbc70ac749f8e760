"""The trust policy's keys, loaded: the PEM files committed with the catalog, and every version of a
Vault Transit key from its ``min_version`` up to its latest (older ones are revoked)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.domain.models import Catalog, TrustedKey
from catalog.domain.trust import environment_keys
from catalog.errors import SigningError
from catalog.signing.keys import key_hint, public_pem

if TYPE_CHECKING:
    from catalog.vault import Vault

__all__ = ["PublicKey", "TrustedKeys", "key_versions", "trusted_keys"]


@dataclass(frozen=True)
class PublicKey:
    """One version of a trusted key: ``name`` is its trust.keys name, ``hint`` the bundle's name for it."""

    name: str
    version: int
    pem: bytes
    hint: str


@dataclass(frozen=True)
class TrustedKeys:
    """What an environment trusts: ``keys`` may sign; ``revoked`` are known versions below their key's
    min_version (kept to say "revoked" rather than "unknown"); ``required``: only signed versions serve."""

    required: bool
    keys: tuple[PublicKey, ...]
    revoked: tuple[PublicKey, ...] = ()


def _loaded(name: str, version: int, pem: bytes, where: str) -> PublicKey:
    public_pem(pem, where)
    return PublicKey(name, version, pem, key_hint(pem))


def key_versions(key: TrustedKey, root: Path, vault: Vault | None) -> tuple[PublicKey, ...]:
    """Every version of ``key`` there is (a PEM key has one, version 1), read from the repository
    (``root``: the catalog's folder) or from Vault."""
    if key.public_key is not None:
        path = root / key.public_key
        try:
            pem = path.read_bytes()
        except OSError as e:
            raise SigningError(f"trust key {key.name}", f"cannot read {path}: {e.strerror or e}") from e
        return (_loaded(key.name, 1, pem, f"trust key {key.name} ({path})"),)
    if key.vault is None:
        raise SigningError(f"trust key {key.name}", "names neither public_key nor vault")
    from catalog.domain.vault_refs import parse_transit_ref

    ref = parse_transit_ref(key.vault)
    if vault is None:
        from catalog.vault import Vault

        vault = Vault.from_env()
    info = vault.transit_public_keys(ref.mount, ref.name)
    return tuple(
        _loaded(key.name, version, pem, f"trust key {key.name} ({key.vault} v{version})")
        for version, pem in sorted(info.public_keys.items())
    )


def trusted_keys(catalog: Catalog, environment: str | None, root: Path, vault: Vault | None = None) -> TrustedKeys:
    """The keys ``environment`` trusts (every key of the policy when it has no rule of its own, or for
    None), each version loaded; whether it requires signatures. Vault is asked only for Vault keys."""
    policy = environment_keys(catalog, environment)
    keys: list[PublicKey] = []
    revoked: list[PublicKey] = []
    for key in policy.keys:
        for public in key_versions(key, root, vault):
            (keys if public.version >= key.min_version else revoked).append(public)
    return TrustedKeys(policy.required, tuple(keys), tuple(revoked))
