"""Exclusive locks on lock files (``flock``), for writers that must not overlap.

The kernel releases a lock when its holder exits, SIGKILL included: a lock file left behind
never blocks anyone, and a lock that cannot be taken always has a live holder. The holder writes
its pid into the file, for messages. A holder may remove the file when it is done: whoever
locks a file checks that it is still the one at the path (not removed or replaced meanwhile)
and otherwise locks the new one, so two processes never both believe they hold the lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

__all__ = ["holder_pid", "lock", "try_lock", "unlock"]

POLL_SECONDS = 0.05  # how often a waiting process tries again


def _is_at(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path``."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def try_lock(path: Path, *, create: bool = True) -> int | None:
    """Lock ``path`` (created when missing, unless ``create`` is false) without waiting.

    Returns the open descriptor that holds the lock, or None when another process holds it (or,
    with ``create`` false, when there is no such file).
    """
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    while True:
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            if create:
                raise
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _is_at(fd, path):
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except OSError:
                pass  # the pid is only for messages
            return fd
        os.close(fd)  # its holder removed it as we opened it: lock the file now at the path
        if not create:
            return None


def lock(path: Path, timeout: float) -> int | None:
    """Lock ``path``, waiting up to ``timeout`` seconds; the descriptor, or None on time-out."""
    deadline = time.monotonic() + timeout
    while True:
        fd = try_lock(path)
        if fd is not None:
            return fd
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(POLL_SECONDS, left))


def unlock(fd: int, path: Path, *, remove: bool) -> None:
    """Release the lock held by ``fd``; with ``remove``, remove the lock file first."""
    try:
        if remove:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)


def holder_pid(path: Path) -> int | None:
    """The pid the holder of ``path`` wrote, when it can be read."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
