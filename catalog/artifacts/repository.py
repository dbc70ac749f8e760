"""Which store an artifact URI, a catalog's store or a --store option means."""

from __future__ import annotations

from pathlib import Path

from catalog.artifacts.locations import store_folder
from catalog.artifacts.stores.base import ArtifactStore
from catalog.artifacts.stores.local import LocalStore
from catalog.domain.models import Catalog, Store
from catalog.domain.stores import IMPLIED_STORE, catalog_stores, default_store
from catalog.errors import UsageError
from catalog.layout import STATE_ROOT, cache_dir

__all__ = ["CACHE_DIR", "open_store", "store_for_uri"]

CACHE_DIR = cache_dir(Path(STATE_ROOT))  # verified copies of fetched OCI artifacts (git-ignored)


def _oci(reference: str, base: Path) -> ArtifactStore:
    from catalog.artifacts.stores.oci import OciStore  # imported only when an OCI store is used

    return OciStore(reference, cache=base / CACHE_DIR)


def _open(store: Store, base: Path) -> ArtifactStore:
    folder = store_folder(store, base)
    if folder is None:
        return _oci(store.uri.rstrip("/"), base)
    return LocalStore(folder, base, absolute_uris=store.uri.startswith("file://"))


def _location(spec: str, base: Path) -> str:
    """Where a --store option points, comparable with a declared store's location."""
    if spec.startswith("oci://"):
        return spec.rstrip("/")
    return str(Path(spec.removeprefix("file://")).resolve())


def _store_location(store: Store, base: Path) -> str:
    folder = store_folder(store, base)
    return store.uri.rstrip("/") if folder is None else str(folder.resolve())


def open_store(spec: str | None, base: Path, catalog: Catalog | None = None) -> ArtifactStore:
    """The store to write into. ``base`` is the catalog's folder.

    Without ``spec``: the catalog's default store (a catalog without ``stores:``: the folder
    ``artifacts`` beside it). ``spec`` names a store of the catalog by name or by URI; when the
    catalog declares no stores, it may also be any folder path, ``file:///abs/path`` or
    ``oci://host/repo``. A catalog that declares stores refuses any other place (its versions'
    URIs must lie in its stores).
    """
    if catalog is None:
        stores, declared = [IMPLIED_STORE], None
    else:
        stores, declared = catalog_stores(catalog), catalog.stores
    if not spec:
        return _open(default_store(catalog) if catalog is not None else IMPLIED_STORE, base)
    named = next((s for s in stores if s.name == spec), None)
    if named is not None:
        return _open(named, base)
    if "://" in spec and not spec.startswith(("oci://", "file://")):
        raise UsageError(f"--store {spec!r}: use a store's name, a folder, file:///absolute/path or oci://host/repo")
    if declared is None:
        return _oci(spec, base) if spec.startswith("oci://") else LocalStore(Path(_location(spec, base)), base)
    where = _location(spec, base)
    match = next((s for s in declared if _store_location(s, base) == where), None)
    if match is None:
        known = ", ".join(f"{s.name} ({s.uri})" for s in declared)
        raise UsageError(
            f"--store {spec!r} is not one of the catalog's stores: {known}; name one of them, "
            "or declare the store under stores: in the catalog first"
        )
    return _open(match, base)


def store_for_uri(uri: str, base: Path) -> ArtifactStore:
    """The store that can fetch an artifact URI from the catalog: the registry an ``oci://`` URI
    names, or the folder a path names (reading needs no more than the path, relative to ``base``)."""
    if uri.startswith("oci://"):
        return _oci(uri.split("@", 1)[0], base)
    return LocalStore(base, base)
