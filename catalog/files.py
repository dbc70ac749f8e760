"""Files replaced whole: a reader (or a crash) sees the old bytes or the new ones, never a mix."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from catalog.errors import DiskFull, EditRefused

__all__ = ["atomic_write", "fsync_dir"]


def atomic_write(path: str | os.PathLike[str], data: bytes, *, expected: bytes | None = None) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old file or the new one.

    The bytes go to a temporary file in the same directory, are flushed to disk, and the file is
    renamed over the target; the directory is synced so the rename itself survives a power cut.
    With ``expected``, the file must still hold those bytes (compared by sha256) just before the
    rename: a program that does not take modelcat's lock (an editor) may have written it meanwhile.
    A full disk raises DiskFull; in every failure the temporary file is removed.
    """
    target = Path(path)
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    with DiskFull.translating(target):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, mode)
            if expected is not None and _sha256(target) != hashlib.sha256(expected).digest():
                raise EditRefused(
                    f"{target} changed on disk while it was being edited (by a program that does not take"
                    " modelcat's lock, e.g. an editor); run the command again",
                    path=str(target),
                )
            os.replace(tmp_name, target)
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise
        fsync_dir(target.parent)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush ``folder``'s entries to disk, so a file created or renamed in it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except FileNotFoundError:
        return None
