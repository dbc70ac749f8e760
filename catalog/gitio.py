"""Git, read-only: a file as it was at a revision, what changed since one, what git ignores, the
repository a folder belongs to, and the log of commits that touched some files (with their trailers)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from catalog.errors import UsageError

__all__ = [
    "LoggedCommit",
    "commit_log",
    "file_at_revision",
    "files_changed_since",
    "folder_changed_since",
    "ignored_by_git",
    "names_at_revision",
    "repository_root",
    "resolve_commit",
    "show_at_revision",
]


def file_at_revision(path: Path, revision: str) -> bytes | None:
    """The bytes of ``path`` at ``revision``, or None when the file did not exist there."""
    folder = path.resolve().parent
    try:
        subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
            check=True,
            capture_output=True,
        )
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    except subprocess.CalledProcessError:
        raise UsageError(f"{revision!r} is not a commit in the git repository at {folder}") from None
    shown = subprocess.run(
        ["git", "-C", str(folder), "show", f"{revision}:./{path.name}"], capture_output=True, check=False
    )
    return shown.stdout if shown.returncode == 0 else None


def folder_changed_since(folder: Path, revision: str) -> bool:
    """Whether any file under ``folder`` differs between ``revision`` and the working tree
    (committed, staged, unstaged or untracked); True when git cannot tell."""
    where = folder.resolve()
    if not where.is_dir():
        return True
    try:
        tracked = subprocess.run(
            ["git", "-C", str(where), "diff", "--quiet", revision, "--", "."], capture_output=True, check=False
        )
        untracked = subprocess.run(
            ["git", "-C", str(where), "ls-files", "--others", "--exclude-standard", "--", "."],
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    return tracked.returncode != 0 or untracked.returncode != 0 or bool(untracked.stdout.strip())


def repository_root(folder: Path) -> Path | None:
    """The top folder of the git repository holding ``folder`` (symlinks resolved), or None when it
    is in none (or git is not installed). Another failure of git (e.g. a repository owned by
    another user, "dubious ownership") is a UsageError: guessing would write wrong paths."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},  # git's own words, to tell "not a git repository" apart
        )
    except FileNotFoundError:
        return None
    if done.returncode == 0 and done.stdout.strip():
        return Path(done.stdout.strip()).resolve()
    if "not a git repository" in done.stderr:
        return None
    raise UsageError(f"git cannot tell which repository holds {folder}: {done.stderr.strip()}")


def _git(folder: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(folder), *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise UsageError("git is not installed") from None


def ignored_by_git(folder: Path, paths: list[Path]) -> dict[Path, str]:
    """Of ``paths`` (absolute; they need not exist), those git ignores in the work tree holding
    ``folder``, each with the rule that ignores it (``.gitignore:3: .modelcat/``). Tracked files
    are not ignored. Nothing outside a repository (or when git cannot tell), or for paths outside it."""
    try:
        top = repository_root(folder)
    except UsageError:
        return {}
    if top is None:
        return {}
    inside = {}
    for path in paths:
        try:
            inside[path.relative_to(top).as_posix()] = path
        except ValueError:
            continue
    if not inside:
        return {}
    done = _git(top, "check-ignore", "--verbose", "-z", "--stdin", stdin=b"\0".join(p.encode() for p in inside))
    if done.returncode not in (0, 1):  # 1: none ignored
        return {}
    fields = done.stdout.decode(errors="replace").split("\0")
    found = {}
    for source, line, pattern, name in zip(fields[0::4], fields[1::4], fields[2::4], fields[3::4], strict=False):
        if name in inside:
            found[inside[name]] = f"{source}:{line}: {pattern}"
    return found


def files_changed_since(folder: Path, revision: str) -> dict[Path, str]:
    """Every file of the work tree holding ``folder`` that differs between ``revision`` and the
    working tree (committed, staged or not, and untracked files git does not ignore), by absolute
    path: "added", "modified" or "deleted"."""
    top = repository_root(folder)
    if top is None:
        raise UsageError(f"{folder} is not in a git repository")
    diff = _git(top, "diff", "--name-status", "-z", "--no-renames", "--no-ext-diff", revision, "--")
    if diff.returncode != 0:
        raise UsageError(f"git diff {revision} failed: {diff.stderr.decode(errors='replace').strip()}")
    fields = diff.stdout.split(b"\0")
    changed = {
        top / os.fsdecode(name): {b"A": "added", b"D": "deleted"}.get(status[:1], "modified")
        for status, name in zip(fields[0::2], fields[1::2], strict=False)
        if name
    }
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z")
    changed |= {top / os.fsdecode(name): "added" for name in untracked.stdout.split(b"\0") if name}
    return changed


def _git_text(folder: Path, *args: str) -> str | None:
    done = _git(folder, *args)
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None


def resolve_commit(folder: Path, revision: str) -> str:
    """The full sha of ``revision`` in the repository holding ``folder``; UsageError when it names no commit."""
    sha = _git_text(folder, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if not sha:
        raise UsageError(f"{revision!r} is not a commit in the git repository at {folder}")
    return sha.strip()


@dataclass(frozen=True)
class LoggedCommit:
    """One commit as ``commit_log`` reads it."""

    sha: str
    author: str  # "name <email>"
    time: str  # commit time, RFC 3339 in UTC ("2026-12-06T20:10:00Z")
    subject: str
    body: str  # the message after the subject, trailers included
    trailers: tuple[tuple[str, str], ...] = ()

    def trailer(self, key: str) -> str | None:
        """The last value of the trailer ``key`` (case-insensitive), None without one."""
        values = [value for name, value in self.trailers if name.lower() == key.lower()]
        return values[-1] if values else None


_FIELD, _RECORD = "\x1f", "\x1e"


def commit_log(folder: Path, paths: list[str], revisions: str = "HEAD") -> list[LoggedCommit]:
    """The commits of ``revisions`` (``HEAD``, ``BASE..HEAD``) that touched any of ``paths``
    (relative to ``folder``), oldest first (parents before children: ``--topo-order``). Nothing in
    a repository without a commit yet; a revision git does not know is a UsageError."""
    where = folder.resolve()
    layout = "%x1e%H%x1f%an <%ae>%x1f%ct%x1f%s%x1f%b%x1f%(trailers:only,unfold)"
    done = _git(where, "log", "--reverse", "--topo-order", f"--format={layout}", revisions, "--", *paths)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        if "does not have any commits yet" in said:
            return []
        raise UsageError(f"git log {revisions} failed: {said}")
    commits = []
    for record in done.stdout.decode(errors="replace").split(_RECORD)[1:]:
        sha, author, seconds, subject, body, trailers = record.split(_FIELD, 5)
        pairs = []
        for line in trailers.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip():
                pairs.append((key.strip(), value.strip()))
        time = datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        commits.append(LoggedCommit(sha, author, time, subject.strip(), body.strip(), tuple(pairs)))
    return commits


def show_at_revision(folder: Path, revision: str, name: str) -> bytes | None:
    """The bytes of ``name`` (a path relative to ``folder``, which must exist; ``name`` need not be in
    the working tree) at ``revision``; None when it did not exist there."""
    done = _git(folder, "show", f"{revision}:./{name}")
    return done.stdout if done.returncode == 0 else None


def names_at_revision(folder: Path, revision: str, subfolder: str) -> list[str]:
    """The file names in ``subfolder`` of ``folder`` at ``revision`` (none when it is absent)."""
    listed = _git_text(folder, "ls-tree", "--name-only", "-z", f"{revision}:./{subfolder}")
    return [name for name in (listed or "").split("\0") if name]
