"""Vault references as the catalog writes them, split into the mount and the path Vault's API takes.

- A Transit key: ``vault://MOUNT/keys/NAME``; the mount is everything before ``/keys/NAME`` and may
  nest (``vault://team/transit/keys/release``: mount ``team/transit``).
- A KV v2 secret: ``vault://MOUNT/PATH``; the mount is the first segment, the path the rest
  (``vault://secret/checkout/token``: mount ``secret``, path ``checkout/token``).

The patterns are the ones models.yaml's schema checks (``VAULT_TRANSIT_KEY``, ``VAULT_KV_PATH``); a
reference that does not match, or has a ``.`` or ``..`` segment (which Vault's router would resolve
to another path), raises ``ValueError`` saying which form is expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from catalog.domain.models import VAULT_KV_PATH, VAULT_TRANSIT_KEY

__all__ = ["KvRef", "TransitRef", "is_vault_ref", "parse_kv_ref", "parse_transit_ref"]

SCHEME = "vault://"
_TRANSIT = re.compile(VAULT_TRANSIT_KEY)
_KV = re.compile(VAULT_KV_PATH)


@dataclass(frozen=True, slots=True)
class TransitRef:
    """A Transit key: the engine's mount and the key's name."""

    mount: str
    name: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.mount}/keys/{self.name}"


@dataclass(frozen=True, slots=True)
class KvRef:
    """A KV v2 secret: the engine's mount and the secret's path under it (without ``data/``)."""

    mount: str
    path: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.mount}/{self.path}"


def _check(ref: str, pattern: re.Pattern[str], form: str) -> str:
    """The reference without its scheme, or ``ValueError`` naming the form expected."""
    rest = ref.removeprefix(SCHEME)
    if any(segment in (".", "..") for segment in rest.split("/")):  # said first: the pattern refuses it too
        raise ValueError(f"{ref!r} has a '.' or '..' segment, which Vault would resolve to another path")
    if not pattern.match(ref):
        raise ValueError(f"{ref!r} is not a {form}")
    return rest


def is_vault_ref(text: str) -> bool:
    """Whether ``text`` is meant as a Vault reference (well formed or not): it starts with vault://."""
    return text.startswith(SCHEME)


def parse_transit_ref(ref: str) -> TransitRef:
    """``vault://MOUNT/keys/NAME`` → ``TransitRef(MOUNT, NAME)``."""
    rest = _check(ref, _TRANSIT, "Vault Transit key: write vault://MOUNT/keys/NAME (e.g. vault://transit/keys/release)")
    mount, name = rest.rsplit("/keys/", 1)
    return TransitRef(mount, name)


def parse_kv_ref(ref: str) -> KvRef:
    """``vault://MOUNT/PATH`` → ``KvRef(MOUNT, PATH)``: the first segment is the mount."""
    rest = _check(ref, _KV, "Vault KV v2 secret: write vault://MOUNT/PATH (e.g. vault://secret/checkout/token)")
    mount, path = rest.split("/", 1)
    return KvRef(mount, path)
