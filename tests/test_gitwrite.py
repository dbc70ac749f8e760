"""catalog.gitwrite, the one way modelcat commits: only the named paths, another branch without
touching the working tree or the index, a refusal when the branch moved, and the fallback identity
only where git has none. Real repositories in tmp_path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from catalog.errors import GitWriteFailed
from catalog.gitwrite import FALLBACK_IDENTITY, commit_files, head_commit, message_with_trailers

IDENTITY = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with two committed files; git reads no user or system configuration, and the
    identity comes from the environment (t <t@example.com>)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in IDENTITY:
        monkeypatch.delenv(key, raising=False)
    for key, value in (("GIT_AUTHOR_NAME", "t"), ("GIT_AUTHOR_EMAIL", "t@example.com")):
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@example.com")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "models.yaml").write_text("one\n")
    (root / "other.txt").write_text("a\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_commit_files_commits_only_the_named_paths_whatever_else_is_staged(top: Path) -> None:
    (top / "other.txt").write_text("b\n")
    git(top, "add", "other.txt")  # staged by someone else: not part of the decision
    (top / "untracked.txt").write_text("x\n")
    before = head_commit(top)
    sha = commit_files(top, {"models.yaml": b"two\n", "rollouts/r.json": b"{}\n"}, message_with_trailers("s", "", []))
    assert git(top, "rev-parse", f"{sha}^") == before
    assert git(top, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).splitlines() == [
        "models.yaml",
        "rollouts/r.json",
    ]
    assert git(top, "show", f"{sha}:other.txt") == "a"
    assert git(top, "diff", "--cached", "--name-only").splitlines() == ["other.txt"]  # still staged
    assert (top / "models.yaml").read_text() == "two\n"
    assert git(top, "status", "--porcelain", "--", "models.yaml", "rollouts") == ""


def test_a_commit_on_another_branch_leaves_the_working_tree_and_the_index_untouched(top: Path) -> None:
    (top / "other.txt").write_text("edited, not staged\n")
    (top / "models.yaml").write_text("staged\n")
    git(top, "add", "models.yaml")
    head = head_commit(top)
    status = git(top, "status", "--porcelain")
    message = message_with_trailers("rollout x: step 1 of 2", "why", [("Rollout-Id", "r1"), ("Decision", "step")])
    sha = commit_files(top, {"models.yaml": b"branch\n"}, message, branch="rollout/r1")
    assert head_commit(top, "refs/heads/rollout/r1") == sha
    assert git(top, "rev-parse", f"{sha}^") == head  # created from HEAD
    assert git(top, "show", f"{sha}:models.yaml") == "branch"
    assert git(top, "show", f"{sha}:other.txt") == "a"
    assert head_commit(top) == head and git(top, "branch", "--show-current") == "main"
    assert git(top, "status", "--porcelain") == status
    assert (top / "models.yaml").read_text() == "staged\n" and (top / "other.txt").read_text() == "edited, not staged\n"
    assert git(top, "show", ":models.yaml") == "staged"  # the index as it was
    assert git(top, "log", "-1", "--format=%(trailers:key=Rollout-Id,valueonly)", sha) == "r1"
    again = commit_files(top, {"rollouts/r1.json": b"{}\n"}, message, branch="rollout/r1")
    assert git(top, "rev-parse", f"{again}^") == sha  # an existing branch grows from its tip


def test_expected_parent_refuses_when_the_branch_moved_and_commits_nothing(top: Path) -> None:
    read = head_commit(top)
    (top / "other.txt").write_text("c\n")
    git(top, "commit", "-q", "-am", "someone else")
    moved = head_commit(top)
    with pytest.raises(GitWriteFailed, match="moved .* nothing committed"):
        commit_files(top, {"models.yaml": b"late\n"}, "late\n", expected_parent=read)
    assert head_commit(top) == moved and (top / "models.yaml").read_text() == "one\n"
    commit_files(top, {"models.yaml": b"x\n"}, "on a branch\n", branch="side")
    side = head_commit(top, "refs/heads/side")
    with pytest.raises(GitWriteFailed, match="side moved"):
        commit_files(top, {"models.yaml": b"y\n"}, "late\n", branch="side", expected_parent=moved)
    assert head_commit(top, "refs/heads/side") == side
    assert commit_files(top, {"models.yaml": b"z\n"}, "in time\n", expected_parent=moved) != moved


def _author(top: Path, sha: str) -> str:
    return git(top, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha)


def test_the_fallback_identity_is_used_only_where_git_has_none(top: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in IDENTITY:
        monkeypatch.delenv(key, raising=False)
    name, email = FALLBACK_IDENTITY
    sha = commit_files(top, {"models.yaml": b"1\n"}, "no identity anywhere\n")
    assert _author(top, sha) == f"{name} <{email}>|{name} <{email}>"
    sha = commit_files(top, {"models.yaml": b"2\n"}, "on a branch too\n", branch="b")
    assert _author(top, sha) == f"{name} <{email}>|{name} <{email}>"
    git(top, "config", "user.name", "Alice")
    git(top, "config", "user.email", "alice@example.com")
    sha = commit_files(top, {"models.yaml": b"3\n"}, "configured\n")
    assert _author(top, sha) == "Alice <alice@example.com>|Alice <alice@example.com>"
    git(top, "config", "--unset", "user.email")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ci@example.com")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ci@example.com")
    sha = commit_files(top, {"models.yaml": b"4\n"}, "from the environment\n")
    assert _author(top, sha) == "Alice <ci@example.com>|Alice <ci@example.com>"


def test_author_identity_names_the_configured_author(tmp_path: Path) -> None:
    from catalog.gitwrite import author_identity

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "config", "user.name", "Ada"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "config", "user.email", "ada@example.com"], check=True)
    assert author_identity(tmp_path) == "Ada <ada@example.com>"
