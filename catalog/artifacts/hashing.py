"""Streaming sha256 with bounded memory: the bytes hashed are the bytes written or used."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from catalog.errors import ArtifactTooLarge, DigestMismatch, StoreError

__all__ = [
    "CHUNK",
    "Hashed",
    "Progress",
    "artifact_digest",
    "hash_file",
    "hash_stream",
    "manifest_digest",
    "read_verified",
]

CHUNK = 1 << 20  # 1 MiB: large enough for full hashing speed, small enough to bound memory
MANIFEST_MEDIA_TYPE = "application/vnd.modelcat.artifact.manifest.v1+json"

Progress = Callable[[int], None]  # called with the number of bytes just processed


class ReadsInto(Protocol):
    """A binary stream that fills a buffer: a file opened ``rb``, urllib3's response."""

    def readinto(self, buffer: bytearray, /) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Hashed:
    digest: str  # sha256:<64 hex>
    size: int


def hash_stream(
    source: ReadsInto,
    *,
    name: str,
    sink: BinaryIO | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> Hashed:
    """Hash ``source`` to its end, copying every chunk to ``sink`` if given.

    Stops with ArtifactTooLarge as soon as more than ``limit`` bytes have been read.
    """
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = 0
    readinto = source.readinto
    while n := readinto(buffer):
        size += n
        if limit is not None and size > limit:
            raise ArtifactTooLarge(name, f"more than {limit:,} bytes (the size limit)")
        chunk = view[:n]
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
        if progress is not None:
            progress(n)
    return Hashed("sha256:" + digest.hexdigest(), size)


def hash_file(path: str, *, limit: int | None = None, progress: Progress | None = None) -> Hashed:
    with open(path, "rb", buffering=0) as handle:
        return hash_stream(handle, name=str(path), limit=limit, progress=progress)


def manifest_digest(files: Sequence[tuple[str, Hashed]]) -> str:
    """The digest of a multi-file artifact: sha256 of a canonical listing of every file.

    Changing any file (say the external ``weights.bin``) changes it.
    """
    listing = {
        "mediaType": MANIFEST_MEDIA_TYPE,
        "files": [{"path": path, "digest": h.digest, "size": h.size} for path, h in sorted(files)],
    }
    canonical = json.dumps(listing, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def artifact_digest(files: Sequence[tuple[str, Hashed]]) -> Hashed:
    """The digest and size the catalog records for an artifact of ``files`` (the model first): a
    single file's own sha256, else the manifest digest; the size is every file's."""
    digest = files[0][1].digest if len(files) == 1 else manifest_digest(files)
    return Hashed(digest, sum(h.size for _, h in files))


def read_verified(path: str, digest: str, limit: int, name: str) -> bytes:
    """The bytes of the small file at ``path`` (a signing bundle), read at most ``limit`` of them,
    refused unless their sha256 is ``digest``. ``name`` names it in errors: StoreError when it cannot
    be read, ArtifactTooLarge past ``limit``, DigestMismatch naming both digests."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as e:
        raise StoreError(name, f"cannot read {path}: {e.strerror or e}") from e
    if len(data) > limit:
        raise ArtifactTooLarge(name, f"is over the limit of {limit:,} bytes")
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise DigestMismatch(name, digest, actual)
    return data
