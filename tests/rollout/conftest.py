"""Fixtures of the rollout tests: the demo catalog in a real git repository, its checkout binding
given a linear rollout block, and git's identity fixed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.git_catalogs import GitRepo, demo_repository, git_env


def with_rollout(text: str, block: str) -> str:
    """The demo catalog's text with checkout's rollout block (its lines before the guardrails, the
    first rollout block of the file) replaced by ``block`` (indented YAML lines)."""
    start = text.index("        rollout:")
    end = text.index("          guardrails:", start)
    return text[:start] + block + text[end:]


def linear(interval: int = 1, *, extra: str = "") -> str:
    return f"        rollout:\n          strategy: linear\n          step_percent: 25\n          interval_seconds: {interval}\n{extra}"


@pytest.fixture
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in git_env().items():
        if key.startswith("GIT_"):
            monkeypatch.setenv(key, value)


@pytest.fixture
def rollout_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, git_identity: None) -> Callable[..., GitRepo]:
    """``make(block)``: the demo repository with checkout's rollout block ``block``, committed; cwd there."""

    def make(block: str | None = None) -> GitRepo:
        repo = demo_repository(tmp_path / "catalog")
        repo.commit(with_rollout(repo.catalog.read_text(encoding="utf-8"), block or linear()), "rollout block", "ready")
        monkeypatch.chdir(repo.root)
        return repo

    return make
