"""Which store an artifact URI or a --store option means."""

from __future__ import annotations

from pathlib import Path

from catalog.artifacts.stores.base import ArtifactStore
from catalog.artifacts.stores.local import LocalStore
from catalog.errors import UsageError

__all__ = ["CACHE_DIR", "DEFAULT_STORE", "open_store", "store_for_uri"]

DEFAULT_STORE = Path(".modelcat/store")
CACHE_DIR = Path(".modelcat/cache")


def _oci(reference: str, base: Path) -> ArtifactStore:
    from catalog.artifacts.stores.oci import OciStore  # imported only when an OCI store is used

    return OciStore(reference, cache=base / CACHE_DIR)


def open_store(spec: str | None, base: Path) -> ArtifactStore:
    """The store a user named: a folder path, ``file:///abs/path`` or ``oci://host/repo``.

    ``base`` is the catalog's folder: the default store and relative URIs live under it.
    """
    if spec is None or spec == "":
        return LocalStore(DEFAULT_STORE, base)
    if spec.startswith("oci://"):
        return _oci(spec, base)
    if spec.startswith("file://"):
        return LocalStore(Path(spec.removeprefix("file://")), base)
    if "://" in spec:
        raise UsageError(f"--store {spec!r}: use a folder, file:///absolute/path or oci://host/repo")
    return LocalStore(Path(spec).resolve(), base)


def store_for_uri(uri: str, base: Path) -> ArtifactStore:
    """The store that can fetch an artifact URI from the catalog."""
    if uri.startswith("oci://"):
        return _oci(uri.split("@", 1)[0], base)
    return LocalStore(DEFAULT_STORE, base)
