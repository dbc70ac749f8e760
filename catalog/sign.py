"""``modelcat sign``: sign a version's artifact, keep the bundle beside it, record it in models.yaml.

The artifact is fetched verified (digest and size), every file of it signed (``signing/bundle.py``), the
bundle checked against the trust key it will be recorded under, stored by digest in the store the
artifact lies in, and recorded last, under the catalog's lock, validated before the atomic write:
when anything fails, models.yaml is left as it was. Signing again replaces the record.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ruamel.yaml.comments import CommentedMap

from catalog.artifacts.repository import open_store
from catalog.domain.models import Catalog, SignatureBundle, TrustedKey
from catalog.domain.stores import catalog_stores, store_of
from catalog.editing import locked_catalog, set_entry
from catalog.errors import EditRefused, SigningError
from catalog.signing.bundle import sign_artifact, verify_artifact
from catalog.signing.keys import ReleaseKey, key_hint, open_key
from catalog.signing.trust import key_versions
from catalog.signing.verify import fetch_version, find_version
from catalog.validate import load_catalog, validate_bytes
from catalog.yamlio.loader import decode
from catalog.yamlio.roundtrip import RoundTrip

if TYPE_CHECKING:
    from catalog.vault import Vault

__all__ = ["sign_version"]


def _trust_key(catalog: Catalog, root: Path, key_ref: str, key: ReleaseKey, name: str | None) -> TrustedKey:
    """The trust key ``key`` is (``name``'s, when given): a Vault key by its reference, a PEM key by
    its public key. SigningError saying what to add to trust.keys when none is."""
    keys = catalog.trust.keys if catalog.trust is not None else []
    if name is not None:
        keys = [k for k in keys if k.name == name]
        if not keys:
            raise SigningError(f"--key-name {name}", "no such key in trust.keys")
    if key_ref.startswith("vault://"):
        found = next((k for k in keys if k.vault == key_ref), None)
    else:
        hint = key_hint(key.public_key_pem())
        found = next(
            (k for k in keys if k.public_key is not None and key_versions(k, root, None)[0].hint == hint), None
        )
    if found is None:
        which = f"trust key {name}" if name is not None else "any key of trust.keys"
        spell = "vault: " + key_ref if key_ref.startswith("vault://") else "public_key: <the path of its public PEM>"
        raise SigningError(key_ref, f"is not {which}; add it to trust.keys ({spell}) first")
    return found


def _bundle_yaml(bundle: SignatureBundle) -> str:
    """The record as a block of plain scalars (the catalog validates it again once it is in place)."""
    fields = bundle.model_dump() | {"signed_at": bundle.signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return "".join(f"{name}: {value}\n" for name, value in fields.items())


def _record(catalog_path: Path, model: str, version: str, signed: str, bundle: SignatureBundle) -> None:
    """Set the version's ``artifact.bundle`` under the catalog's lock, validated before written; refused
    when the version's artifact is no longer the one ``signed`` (its digest) names."""
    with locked_catalog(catalog_path) as locked:
        text, problems = decode(locked.original, str(catalog_path))
        if problems:
            raise EditRefused(f"{catalog_path} is not UTF-8", problems, str(catalog_path))
        edit = RoundTrip(text, str(catalog_path))
        models = edit.document.get("models") if isinstance(edit.document, dict) else None
        entry = next((m for m in models or [] if isinstance(m, dict) and m.get("name") == model), None)
        versions = entry.get("versions") if entry is not None else None
        found = next((v for v in versions or [] if isinstance(v, dict) and str(v.get("version")) == version), None)
        artifact = found.get("artifact") if found is not None else None
        if not isinstance(artifact, CommentedMap):
            raise EditRefused(
                f"{model} {version} was removed from {catalog_path} while signing", path=str(catalog_path)
            )
        if artifact.get("digest") != signed:
            raise EditRefused(
                f"{model} {version}'s artifact changed in {catalog_path} while signing; sign again",
                path=str(catalog_path),
            )
        set_entry(artifact, "bundle", edit.load_fragment(_bundle_yaml(bundle)))
        new_text = edit.dump().encode("utf-8")
        report = validate_bytes(new_text, str(catalog_path))
        if report.errors:
            raise EditRefused(f"the signature would leave {catalog_path} invalid", report.errors, str(catalog_path))
        locked.write(new_text)


def sign_version(
    catalog_path: Path,
    model: str,
    version: str,
    key_ref: str,
    key_name: str | None = None,
    *,
    vault: Vault | None = None,
    now: datetime | None = None,
) -> SignatureBundle:
    """Sign ``model`` ``version`` with the key ``key_ref`` names (a PEM path, relative ones from the
    catalog's folder, or ``vault://MOUNT/keys/NAME``), which must be a key of the trust policy
    (``key_name``'s, when given); store the bundle and record it. The record written is returned."""
    root = catalog_path.parent
    catalog = load_catalog(catalog_path)
    entry, found = find_version(catalog, model, version)
    key = open_key(key_ref, root, vault)
    trusted = _trust_key(catalog, root, key_ref, key, key_name)
    fetched = fetch_version(catalog, root, entry, found)
    data = sign_artifact(fetched.root, key)
    signer = verify_artifact(fetched.root, data, key_versions(trusted, root, vault), where=f"{model} {version} bundle")
    if signer.version < trusted.min_version:
        raise SigningError(
            key_ref,
            f"signed with version {signer.version}, below trust key {trusted.name}'s min_version {trusted.min_version}",
        )
    home = store_of(catalog_stores(catalog), found.artifact.uri)
    uri = open_store(home.name if home is not None else None, root, catalog).put_blob(data)
    record = SignatureBundle(
        uri=uri,
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        key=trusted.name,
        key_version=signer.version,
        signed_at=(now or datetime.now(UTC)).replace(microsecond=0),
    )
    _record(catalog_path, model, version, found.artifact.digest, record)
    return record
