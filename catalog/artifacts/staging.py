"""Stage an artifact: copy it into the store's staging area while hashing, then inspect the copy.

What is inspected and later stored is exactly what was hashed; the source is read once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from catalog.artifacts.hashing import Hashed, Progress, hash_stream, manifest_digest
from catalog.artifacts.onnx_facts import check_location, external_locations, inspect_onnx, load_graph
from catalog.artifacts.stores.base import MAIN_FILE, StagedArtifact
from catalog.errors import ArtifactTooLarge, NotOnnx, UnsafeArtifact

__all__ = ["copy_hashed", "stage_artifact"]

T = TypeVar("T")


def copy_hashed(source: Path, target: Path, *, limit: int | None, progress: Progress | None = None) -> Hashed:
    """Copy ``source`` to a new file ``target`` while hashing; flushed to disk before returning."""
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
    except NotOnnx as e:
        raise NotOnnx(str(source), e.detail) from e


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
    locations = external_locations(_as_source(load_graph, main, source))
    targets = [check_location(source.parent, location, source) for location in locations]
    for location, target in zip(locations, targets, strict=True):
        total += target.stat().st_size
        if total > limit:
            raise ArtifactTooLarge(str(source), f"with its external data is over {limit:,} bytes (the size limit)")
    for location, target in zip(locations, targets, strict=True):
        hashed = copy_hashed(target, staging / location, limit=limit, progress=progress)
        files.append((location, hashed))
    total = sum(h.size for _, h in files)
    if total > limit:
        raise ArtifactTooLarge(str(source), f"grew to {total:,} bytes while it was read, over the limit of {limit:,}")
    facts = _as_source(inspect_onnx, main, source)
    digest = files[0][1].digest if len(files) == 1 else manifest_digest(files)
    return StagedArtifact(root=staging, files=tuple(files), digest=digest, size=total, facts=facts)
