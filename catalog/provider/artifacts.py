"""Where an endpoint's bytes come from: a path or catalog URI, fetched and verified by the stores.

A relative path resolves against the catalog's folder; ``file://`` and ``oci://`` URIs go to
the store that serves them (``catalog.artifacts.repository.store_for_uri``), so an OCI artifact
is pulled into the cache and every artifact is hashed against the expected digest before a
replica is started on it. The size and limit come from the catalog version naming the digest;
a local artifact the catalog does not list is checked against its own size.
"""

from __future__ import annotations

from pathlib import Path

from catalog.artifacts.repository import store_for_uri
from catalog.domain.models import Catalog, Limits
from catalog.errors import ArtifactError

__all__ = ["resolve_artifact"]


def _catalog_entry(catalog: Catalog | None, model: str, version: str, digest: str) -> tuple[int, int] | None:
    """(size_bytes, limit) of the catalog version with ``digest`` (the named one preferred)."""
    if catalog is None:
        return None
    found = None
    for m in catalog.models:
        for v in m.versions:
            if v.artifact.digest == digest:
                entry = (v.artifact.size_bytes, m.max_artifact_bytes or catalog.limits.max_artifact_bytes)
                if m.name == model and v.version == version:
                    return entry
                found = found or entry
    return found


def _local_path(ref: str, base: Path) -> Path:
    return Path(ref.removeprefix("file://")) if ref.startswith("file://") else base / ref


def _local_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def resolve_artifact(ref: str, digest: str, model: str, version: str, base: Path, catalog: Catalog | None) -> Path:
    """A verified local path (file, or folder of a multi-file artifact) to start replicas on.

    Raises ArtifactError (DigestMismatch, StoreError, ...) when the bytes are missing or wrong.
    """
    entry = _catalog_entry(catalog, model, version, digest)
    limit = entry[1] if entry else (catalog.limits if catalog else Limits()).max_artifact_bytes
    if ref.startswith("oci://"):
        if entry is None:
            raise ArtifactError(
                ref, f"no catalog version names {digest}, so its size is unknown; add it to the catalog"
            )
        fetched = store_for_uri(ref, base).fetch(ref, digest, entry[0], limit)
        folder = fetched.main.parent
        others = [p for p in folder.rglob("*") if p.is_file() and p != fetched.main]
        return folder if others else fetched.main
    if "://" in ref and not ref.startswith("file://"):
        raise ArtifactError(ref, "an artifact is a path, file:///absolute/path or oci://host/repo@sha256:...")
    local = _local_path(ref, base)
    if not local.exists():
        raise ArtifactError(ref, f"not found ({local})")
    size = entry[0] if entry else _local_size(local)
    store_for_uri(ref, base).fetch(str(local), digest, size, limit)  # hashes it: DigestMismatch names both
    return local.resolve()
