"""The default store: a content-addressed folder, ``<root>/sha256/<ab>/<64 hex>``.

A single-file artifact is a file at that path; a multi-file one (external data) is a folder
holding ``model.onnx`` and its data files. Staging happens inside ``<root>/.staging`` so that
the final step is one rename: a half-written upload never becomes visible. Stored files are
read-only (0444). What is already at a digest path is never trusted: ``put`` checks it (size,
then hash) and replaces it when it is not the staged artifact.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from pathlib import Path

from catalog.artifacts.hashing import hash_file, manifest_digest, read_verified
from catalog.artifacts.staging import StagingArea
from catalog.artifacts.stores.base import MAIN_FILE, Fetched, StagedArtifact
from catalog.errors import ArtifactError, ArtifactTooLarge, DigestMismatch, DiskFull, StoreError

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


def _files(path: Path) -> dict[str, Path]:
    """The regular files of a stored artifact by their path inside it; a symlink counts as odd."""
    if path.is_symlink():
        return {}
    if path.is_file():
        return {MAIN_FILE: path}
    found: dict[str, Path] = {}
    for p in path.rglob("*"):
        if p.is_symlink() or not (p.is_dir() or p.is_file()):
            return {}
        if p.is_file():
            found[p.relative_to(path).as_posix()] = p
    return found


def _holds(final: Path, staged: StagedArtifact) -> bool:
    """Whether ``final`` already holds exactly the staged artifact: the same files, sizes, hashes."""
    if not os.path.lexists(final) or final.is_file() != staged.single_file:
        return False
    files = _files(final)
    expected = {path: hashed for path, hashed in staged.files}
    if set(files) != set(expected) or any(files[p].stat().st_size != expected[p].size for p in files):
        return False
    return all(hash_file(str(files[p])).digest == expected[p].digest for p in files)


def _hashes_to(path: Path, digest: str) -> bool:
    return hash_file(str(path)).digest == digest


def _read_only(path: Path) -> None:
    """Make the file at ``path``, or every file under the folder ``path``, read-only (0444)."""
    for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
        if stat.S_IMODE(file.stat().st_mode) != 0o444:
            os.chmod(file, 0o444)


class LocalStore:
    """Artifacts in a folder. URIs are paths relative to ``base`` (the catalog's folder) when the
    store lies inside it, else (or with ``absolute_uris``, for a ``file:///`` store) ``file:///absolute/path``."""

    def __init__(self, root: Path, base: Path, *, absolute_uris: bool = False) -> None:
        self.root = root if root.is_absolute() else base / root
        self.base = base
        self._staging = StagingArea(self.root / ".staging")
        self.absolute_uris = absolute_uris

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"

    def staging_dir(self) -> Path:
        try:
            with DiskFull.translating(self._staging.area):
                return self._staging.new()
        except OSError as e:
            reason = "is read-only" if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM) else e.strerror
            raise StoreError(str(self.root), f"store directory {reason}") from e

    def release_staging(self, folder: Path) -> None:
        self._staging.release(folder)

    def uri_for(self, path: Path) -> str:
        if self.absolute_uris:
            return path.resolve().as_uri()
        try:
            return path.resolve().relative_to(self.base.resolve()).as_posix()
        except ValueError:
            return path.resolve().as_uri()

    def put(self, staged: StagedArtifact) -> str:
        """Store the staged artifact unless its digest path already holds it (checked, not trusted);
        a wrong object there (truncated, damaged) is replaced, atomically for a single file."""
        final = blob_path(self.root, staged.digest)
        try:
            with DiskFull.translating(final):
                final.parent.mkdir(parents=True, exist_ok=True)
                if _holds(final, staged):
                    with contextlib.suppress(OSError):  # best effort: the store may be shared or read-only
                        _read_only(final)
                else:
                    self._install(staged, final)
        except OSError as e:
            raise StoreError(str(self.root), f"cannot store {staged.digest}: {e.strerror or e}") from e
        finally:
            self.release_staging(staged.root)
        return self.uri_for(final)

    def _install(self, staged: StagedArtifact, final: Path) -> None:
        source = staged.main if staged.single_file else staged.root
        _read_only(source)
        over_a_file = staged.single_file and final.is_file() and not final.is_symlink()
        aside = self._staging.new() if os.path.lexists(final) and not over_a_file else None
        try:
            if aside is not None:  # a wrong folder (or link) cannot be renamed over: move it out of the way
                try:
                    os.rename(final, aside / "replaced")
                except FileNotFoundError:
                    pass  # another process moved it first
            try:
                os.replace(source, final)  # over a wrong file: readers see the old bytes or the new
            except OSError as e:  # another process stored the same folder first: then it is there
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not _holds(final, staged):
                    raise
        finally:
            if aside is not None:
                self._staging.release(aside)
        _fsync_dir(final.parent)

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
        return Fetched(main=main, digest=actual, size=total, root=path)

    def put_blob(self, data: bytes) -> str:
        """Store ``data`` at its digest path (read-only), unless that path already holds exactly it."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        final = blob_path(self.root, digest)
        work = self.staging_dir()
        try:
            with DiskFull.translating(final):
                final.parent.mkdir(parents=True, exist_ok=True)
                if not (final.is_file() and not final.is_symlink() and _hashes_to(final, digest)):
                    staged = work / "blob"
                    with open(staged, "xb") as sink:
                        sink.write(data)
                        sink.flush()
                        os.fsync(sink.fileno())
                    os.chmod(staged, 0o444)
                    os.replace(staged, final)
                    _fsync_dir(final.parent)
        except OSError as e:
            raise StoreError(str(self.root), f"cannot store {digest}: {e.strerror or e}") from e
        finally:
            self.release_staging(work)
        return self.uri_for(final)

    def fetch_blob(self, uri: str, digest: str, limit: int) -> bytes:
        path = self.path_of(uri)
        if not path.is_file():
            raise StoreError(uri, f"not found in the local store ({path})")
        return read_verified(str(path), digest, limit, uri)
