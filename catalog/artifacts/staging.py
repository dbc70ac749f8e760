"""Stage an artifact: copy it into the store's staging area while hashing, then inspect the copy.

What is inspected and later stored is exactly what was hashed; the source is read once.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from catalog import filelock
from catalog.artifacts.hashing import Hashed, Progress, artifact_digest, hash_file, hash_stream
from catalog.artifacts.onnx_facts import MAIN_FILE, external_files, inspect_onnx, load_graph
from catalog.artifacts.stores.base import StagedArtifact
from catalog.errors import ArtifactTooLarge, DiskFull, NotOnnx, UnsafeArtifact, UnsupportedModel

__all__ = ["StagingArea", "copy_hashed", "hash_in_place", "stage_artifact"]

T = TypeVar("T")


class StagingArea:
    """Private folders in ``area`` (a store's ``.staging``), each locked by its process while in use.

    Folder ``<name>`` has its lock file ``<name>.lock`` beside it (not inside: a folder may become
    an artifact by one rename). ``new`` first removes what killed processes left: every folder
    whose lock nobody holds, and folders without a lock file (left by modelcat before the locks).
    The rule is a lock, not a pid or an age: the kernel releases a dead process's lock at once,
    SIGKILL included; a pid can be reused and means nothing to another host or container sharing
    the store; an age would remove a slow copy still in progress or keep a dead one for hours.
    """

    def __init__(self, area: Path) -> None:
        self.area = area
        self._held: dict[Path, int] = {}

    def new(self) -> Path:
        """A fresh empty folder, locked until ``release``."""
        self.area.mkdir(parents=True, exist_ok=True)
        self.sweep()
        while True:
            folder = self.area / f"{os.getpid()}-{secrets.token_hex(6)}"
            lock = self.area / f"{folder.name}.lock"
            fd = filelock.try_lock(lock)
            if fd is None:
                continue
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                filelock.unlock(fd, lock, remove=False)
                continue
            except BaseException:
                filelock.unlock(fd, lock, remove=True)
                raise
            self._held[folder] = fd
            return folder

    def release(self, folder: Path) -> None:
        """Remove ``folder`` (if it is still there) and its lock; a second call does nothing."""
        _remove(folder)
        fd = self._held.pop(folder, None)
        if fd is not None:
            filelock.unlock(fd, self.area / f"{folder.name}.lock", remove=True)

    def sweep(self) -> None:
        """Remove the folders (and lock files) of processes that died while staging."""
        try:
            entries = list(self.area.iterdir())
        except FileNotFoundError:
            return
        for entry in entries:
            folder = self.area / entry.name.removesuffix(".lock")
            lock = self.area / f"{folder.name}.lock"
            if folder in self._held:
                continue
            fd = filelock.try_lock(lock, create=False)
            if fd is None and lock.exists():
                continue  # a live process holds it
            _remove(folder)
            if fd is not None:
                filelock.unlock(fd, lock, remove=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def copy_hashed(source: Path, target: Path, *, limit: int | None, progress: Progress | None = None) -> Hashed:
    """Copy ``source`` to a new file ``target`` while hashing; flushed to disk before returning.

    A full disk raises DiskFull (the caller removes the partial copy with its staging folder).
    """
    with DiskFull.translating(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb", buffering=0) as src, open(target, "xb") as dst:
            hashed = hash_stream(src, name=str(source), sink=dst, limit=limit, progress=progress)
            dst.flush()
            os.fsync(dst.fileno())
    return hashed


def _as_source(check: Callable[[Path], T], staged: Path, source: Path) -> T:
    """Run a check on the staged copy, naming the user's file (not the copy) in any error."""
    try:
        return check(staged)
    except (NotOnnx, UnsupportedModel, UnsafeArtifact) as e:
        raise type(e)(str(source), e.detail) from e


def _regular_file(path: Path) -> os.stat_result:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UnsafeArtifact(str(path), "does not exist") from None
    if not path.is_file():
        raise UnsafeArtifact(str(path), "is not a regular file")
    return info


def stage_artifact(source: Path, staging: Path, *, limit: int, progress: Progress | None = None) -> StagedArtifact:
    """Copy the model at ``source`` and its external data into ``staging``; hash and inspect them.

    Sizes are checked against ``limit`` before reading (a sparse 3 GB file is refused at once)
    and again while copying.
    """
    size = _regular_file(source).st_size
    if size > limit:
        raise ArtifactTooLarge(str(source), f"is {size:,} bytes, over the limit of {limit:,}")
    main = staging / MAIN_FILE
    files = [(MAIN_FILE, copy_hashed(source, main, limit=limit, progress=progress))]
    total = files[0][1].size
    external = external_files(_as_source(load_graph, main, source), source)
    for _, target in external:
        total += target.stat().st_size
        if total > limit:
            raise ArtifactTooLarge(str(source), f"with its external data is over {limit:,} bytes (the size limit)")
    for location, target in external:
        files.append((location, copy_hashed(target, staging / location, limit=limit, progress=progress)))
    hashed = artifact_digest(files)
    if hashed.size > limit:
        raise ArtifactTooLarge(
            str(source), f"grew to {hashed.size:,} bytes while it was read, over the limit of {limit:,}"
        )
    facts = _as_source(inspect_onnx, main, source)
    return StagedArtifact(root=staging, files=tuple(files), digest=hashed.digest, size=hashed.size, facts=facts)


def hash_in_place(source: Path, external: Sequence[str], progress: Progress | None = None) -> Hashed:
    """The digest and size ``stage_artifact`` records for the model at ``source`` whose checked
    external-data files are ``external`` (as ``OnnxFacts.external_files`` names them), read in place."""
    files = [(MAIN_FILE, hash_file(str(source), progress=progress))]
    files += [(location, hash_file(str(source.parent / location), progress=progress)) for location in external]
    return artifact_digest(files)
