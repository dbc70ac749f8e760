"""The one small interface every artifact store implements, and the values that cross it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from catalog.artifacts.hashing import Hashed
from catalog.artifacts.onnx_facts import MAIN_FILE, OnnxFacts

__all__ = ["MAIN_FILE", "ArtifactStore", "Fetched", "StagedArtifact"]


@dataclass(frozen=True)
class StagedArtifact:
    """An artifact copied into a private folder, hashed while copied, and inspected there.

    ``files`` lists every file relative to ``root`` (the model as ``model.onnx``); ``digest`` is
    the file's own sha256 for a single file, else the manifest digest over all files.
    """

    root: Path
    files: tuple[tuple[str, Hashed], ...]
    digest: str
    size: int
    facts: OnnxFacts

    @property
    def main(self) -> Path:
        return self.root / MAIN_FILE

    @property
    def single_file(self) -> bool:
        return len(self.files) == 1


@dataclass(frozen=True)
class Fetched:
    """A verified local copy: ``main`` is the model file; its folder holds any external data.
    ``root`` is the artifact as a whole: the file itself for a single-file artifact, else the folder
    holding every file (what a release signature covers)."""

    main: Path
    digest: str
    size: int
    root: Path


class ArtifactStore(Protocol):
    """Keeps artifacts by digest. URIs it returns pin the content, never a mutable name."""

    def staging_dir(self) -> Path:
        """A fresh private folder where an artifact may be staged before ``put``."""
        ...

    def release_staging(self, folder: Path) -> None:
        """Remove a folder ``staging_dir`` made (``put`` does it too); a second call does nothing."""
        ...

    def put(self, staged: StagedArtifact) -> str:
        """Store the staged artifact (atomically: all or nothing) and return its URI."""
        ...

    def fetch(self, uri: str, digest: str, size: int, limit: int) -> Fetched:
        """A local copy of the artifact at ``uri``, verified against ``digest`` and ``size``.

        Raises DigestMismatch, ArtifactTooLarge or StoreError; never returns unverified bytes.
        """
        ...

    def put_blob(self, data: bytes) -> str:
        """Store a small file (a signature bundle) by its sha256 and return its URI."""
        ...

    def fetch_blob(self, uri: str, digest: str, limit: int) -> bytes:
        """The bytes of the blob at ``uri``, verified against ``digest``, at most ``limit`` of them.

        Raises DigestMismatch, ArtifactTooLarge or StoreError; never returns unverified bytes.
        """
        ...
