"""The default store: a content-addressed folder, ``<root>/sha256/<ab>/<64 hex>``.

A single-file artifact is a file at that path; a multi-file one (external data) is a folder
holding ``model.onnx`` and its data files. Staging happens inside ``<root>/.staging`` so that
the final step is one rename: a half-written upload never becomes visible.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from catalog.artifacts.hashing import hash_file, manifest_digest
from catalog.artifacts.stores.base import MAIN_FILE, Fetched, StagedArtifact
from catalog.errors import ArtifactError, ArtifactTooLarge, DigestMismatch, StoreError

__all__ = ["LocalStore", "blob_path"]


def blob_path(root: Path, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return root / "sha256" / hexdigest[:2] / hexdigest


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """Artifacts in a folder. URIs are paths relative to ``base`` (the catalog's folder) when the
    store lies inside it, else ``file:///absolute/path``."""

    def __init__(self, root: Path, base: Path) -> None:
        self.root = root if root.is_absolute() else base / root
        self.base = base

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"

    def staging_dir(self) -> Path:
        area = self.root / ".staging"
        try:
            area.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(dir=area))
        except OSError as e:
            reason = "is read-only" if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM) else e.strerror
            raise StoreError(str(self.root), f"store directory {reason}") from e

    def uri_for(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.base.resolve()).as_posix()
        except ValueError:
            return path.resolve().as_uri()

    def put(self, staged: StagedArtifact) -> str:
        final = blob_path(self.root, staged.digest)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            if not final.exists():
                os.replace(staged.main if staged.single_file else staged.root, final)
                _fsync_dir(final.parent)
        except OSError as e:
            raise StoreError(str(self.root), f"cannot store {staged.digest}: {e.strerror or e}") from e
        finally:
            shutil.rmtree(staged.root, ignore_errors=True)
        return self.uri_for(final)

    def path_of(self, uri: str) -> Path:
        if uri.startswith("file://"):
            return Path(uri.removeprefix("file://"))
        return self.base / uri

    def fetch(self, uri: str, digest: str, size: int, limit: int) -> Fetched:
        path = self.path_of(uri)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            total = sum(p.stat().st_size for p in files)
            if total > limit:
                raise ArtifactTooLarge(uri, f"is {total:,} bytes, over the limit of {limit:,}")
            hashed = [(p.relative_to(path).as_posix(), hash_file(str(p), limit=limit)) for p in files]
            actual, main = manifest_digest(hashed), path / MAIN_FILE
        elif path.is_file():
            real = path.stat().st_size
            if real > limit:
                raise ArtifactTooLarge(uri, f"is {real:,} bytes, over the limit of {limit:,}")
            hashed_one = hash_file(str(path), limit=limit)
            actual, total, main = hashed_one.digest, hashed_one.size, path
        else:
            raise StoreError(uri, f"not found in the local store ({path})")
        if actual != digest:
            raise DigestMismatch(uri, digest, actual)
        if total != size:
            raise ArtifactError(uri, f"is {total:,} bytes but the catalog says size_bytes: {size:,}")
        return Fetched(main=main, digest=actual, size=total)
