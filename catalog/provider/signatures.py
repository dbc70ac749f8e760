"""What an endpoint's replicas verify before they listen, made ready by the provider at create.

The endpoint's body names the version's signing bundle (URI and digest, in a catalog store) and
the environment's trusted keys (a public key's PEM text, a Vault Transit key by reference). The
provider fetches the bundle (digest-checked) into the run directory, reads the Vault keys (every
version Vault holds; those below ``min_version`` kept apart as revoked) and writes the replicas'
trust file beside it (``catalog.serving.signature``: public keys only). A key that cannot be read,
or Vault refusing, fails the create with the reason: no replica starts on a trust it could not read.

Layout under the run directory::

    signing/<endpoint>.trust.json      {required, keys: [{name, version, pem}], revoked: [...]}
    signing/bundles/<64 hex>.json      the bundle, named by its sha256
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.artifacts.repository import store_for_uri
from catalog.files import atomic_write
from catalog.serving.signature import resolve_keys, trust_document
from catalog.signing.verify import MAX_BUNDLE_BYTES

__all__ = ["ReleaseCheck", "prepare_release_check"]


@dataclass(frozen=True, slots=True)
class ReleaseCheck:
    """The replicas' flags: the local bundle file (if the version is signed), its digest, the trust file."""

    bundle: str | None
    bundle_digest: str | None
    trust: str

    def argv(self) -> list[str]:
        flags = ["--trust", self.trust]
        if self.bundle is not None and self.bundle_digest is not None:
            flags += ["--bundle", self.bundle, "--bundle-digest", self.bundle_digest]
        return flags


def prepare_release_check(state: Mapping[str, Any], folder: Path, base: Path) -> ReleaseCheck | None:
    """The release check of the endpoint ``state`` (None: an unsigned version nothing requires to
    be signed), its files written under ``folder`` (the run directory's ``signing``); ``base`` is
    the catalog's folder, against which relative paths resolve. Raises the store's, signing's and
    Vault's errors."""
    uri, digest = state.get("bundle"), state.get("bundle_digest")
    required = bool(state.get("require_signatures"))
    if not uri and not required:
        return None
    keys = resolve_keys(state.get("trusted_key") or [], required)
    bundle = None
    if uri and digest:
        data = store_for_uri(uri, base).fetch_blob(uri, digest, MAX_BUNDLE_BYTES)
        bundle = folder / "bundles" / f"{digest.removeprefix('sha256:')}.json"
        bundle.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(bundle, data)
    trust = folder / f"{state['name']}.trust.json"
    trust.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(trust, trust_document(keys))
    return ReleaseCheck(str(bundle) if bundle else None, digest if bundle else None, str(trust))
