"""git, writing: one commit of given files, with trailers, to the current branch or to another one.

``commit_files`` is the one way modelcat commits (the rollout's decisions, ``rollback``). On the
current branch it commits exactly the named paths (``git commit --only``), whatever else is staged;
on another branch it builds the commit from that branch's tree with a private index
(``hash-object``, ``update-index``, ``write-tree``, ``commit-tree``, ``update-ref``), so the working
tree and the index are never touched. Reading git stays in ``catalog.gitio``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from catalog.errors import GitWriteFailed, UsageError
from catalog.files import atomic_write

__all__ = [
    "FALLBACK_IDENTITY",
    "author_identity",
    "commit_files",
    "current_branch",
    "head_commit",
    "message_with_trailers",
]

# used only where git has no identity configured (a fresh CI machine): the actor is in the trailers
FALLBACK_IDENTITY = ("modelcat", "modelcat@localhost")


def _run(top: Path, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(top), *args],
            input=stdin,
            capture_output=True,
            check=False,
            env={**os.environ, **(env or {}), "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip() or done.stdout.decode(errors="replace").strip()
        raise GitWriteFailed(f"git {args[0]} failed: {said}")
    return done.stdout.decode(errors="replace").strip()


def head_commit(top: Path, ref: str = "HEAD") -> str | None:
    """The commit ``ref`` names in the repository ``top`` (None: no such ref, e.g. an empty repository)."""
    try:
        return _run(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except GitWriteFailed:
        return None


def current_branch(top: Path) -> str | None:
    """The branch checked out in ``top`` (None: a detached HEAD)."""
    try:
        return _run(top, "symbolic-ref", "--quiet", "--short", "HEAD")
    except GitWriteFailed:
        return None


def message_with_trailers(subject: str, body: str, trailers: Sequence[tuple[str, str]]) -> str:
    """A commit message: subject, blank line, body, blank line, ``Key: value`` trailers."""
    parts = [subject.strip()]
    if body.strip():
        parts.append(body.strip())
    if trailers:
        parts.append("\n".join(f"{key}: {' '.join(value.split())}" for key, value in trailers))
    return "\n\n".join(parts) + "\n"


def author_identity(top: Path) -> str:
    """Who commits in the repository ``top``, as git names the author: ``name <email>`` (the
    fallback identity where git has none)."""
    done = subprocess.run(
        ["git", "-C", str(top), "var", "GIT_AUTHOR_IDENT"], capture_output=True, text=True, check=False
    )
    ident = done.stdout.strip()
    if done.returncode == 0 and ">" in ident:
        return ident[: ident.rindex(">") + 1]
    return f"{FALLBACK_IDENTITY[0]} <{FALLBACK_IDENTITY[1]}>"


def _identity(top: Path) -> dict[str, str]:
    """Environment naming a committer where git has none configured."""
    configured = subprocess.run(
        ["git", "-C", str(top), "config", "user.email"], capture_output=True, check=False
    ).stdout.strip()
    if configured or os.environ.get("GIT_AUTHOR_EMAIL") or os.environ.get("GIT_COMMITTER_EMAIL"):
        return {}
    name, email = FALLBACK_IDENTITY
    return {
        "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", name),
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", name),
        "GIT_COMMITTER_EMAIL": email,
    }


def commit_files(
    top: Path,
    files: Mapping[str, bytes],
    message: str,
    *,
    branch: str | None = None,
    expected_parent: str | None = None,
) -> str:
    """Commit ``files`` (paths relative to the repository ``top``, with their new content) as one
    commit; its sha.

    ``branch`` None: on the current branch; the files are written in the working tree first
    (callers that already wrote them pass the same bytes), and only they are committed. Else: on
    ``branch`` (created from HEAD when missing) without touching the working tree or the index.
    ``expected_parent``: the commit the caller read its state from; GitWriteFailed, with nothing
    committed, when the branch has moved since.
    """
    env = _identity(top)
    ref = f"refs/heads/{branch}" if branch else "HEAD"
    tip = head_commit(top, ref)
    parent = tip if branch is None or tip is not None else head_commit(top, "HEAD")
    if expected_parent is not None and parent != expected_parent:
        where = branch or current_branch(top) or "HEAD"
        raise GitWriteFailed(f"{where} moved to {parent} since {expected_parent} was read: nothing committed")
    if branch is None:
        for name, data in files.items():
            path = top / name
            if not path.exists() or path.read_bytes() != data:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, data)
        paths = list(files)
        _run(top, "add", "--", *paths, env=env)
        _run(
            top, "commit", "--quiet", "--no-verify", "--only", "-F", "-", "--", *paths, stdin=message.encode(), env=env
        )
        sha = head_commit(top)
        assert sha is not None
        return sha
    if parent is None:
        raise GitWriteFailed(f"cannot create branch {branch}: the repository has no commit yet")
    with tempfile.TemporaryDirectory(prefix="modelcat-index-") as scratch:
        index = {**env, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _run(top, "read-tree", parent, env=index)
        for name, data in files.items():
            blob = _run(top, "hash-object", "-w", "--stdin", stdin=data, env=index)
            _run(top, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=index)
        tree = _run(top, "write-tree", env=index)
        sha = _run(top, "commit-tree", tree, "-p", parent, "-F", "-", stdin=message.encode(), env=index)
        _run(top, "update-ref", f"refs/heads/{branch}", sha, tip or "", env=index)
    return sha
