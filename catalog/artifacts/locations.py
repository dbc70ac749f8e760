"""Where on this machine a catalog's folder stores and path artifacts are (no IO, and cheap to import:
validate, review and diff use it without loading the stores)."""

from __future__ import annotations

import posixpath
from pathlib import Path

from catalog.domain.models import Store
from catalog.domain.stores import folder_of

__all__ = ["artifact_path", "store_folder"]


def store_folder(store: Store, base: Path) -> Path | None:
    """A folder store's folder, relative ones in ``base`` (the catalog's folder); None for a registry."""
    folder = folder_of(store)
    return None if folder is None else base / folder


def artifact_path(uri: str, base: Path) -> Path | None:
    """The file or folder a path or ``file://`` artifact URI names (a path relative to ``base``);
    None for any other scheme."""
    if uri.startswith("file://"):
        return Path(posixpath.normpath(uri.removeprefix("file://")))
    return None if "://" in uri else base / posixpath.normpath(uri)
