"""Shared fixtures: the demo catalog, a temp copy of it, a CLI runner, and a fake Vault."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from catalog.cli.main import main
from tests.helpers import DEMO, with_demo_keys

if TYPE_CHECKING:
    from tests.vault_server import FakeVault


@pytest.fixture
def demo_text() -> str:
    return DEMO.read_text(encoding="utf-8")


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """models.yaml (and the demo's keys) copied into a temp dir (artifacts are not needed for these tests)."""
    target = tmp_path / "models.yaml"
    shutil.copyfile(DEMO, target)
    with_demo_keys(tmp_path)
    return target


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    def _write(text: str | bytes, name: str = "models.yaml") -> Path:
        with_demo_keys(tmp_path)  # for a catalog that keeps the demo's trust policy
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def cli() -> Callable[..., Result]:
    runner = CliRunner()

    def _run(*args: str) -> Result:
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return _run


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A git repository holding the demo catalog, its artifacts and the built-in policies, committed
    and tagged ``base`` (``tests.git_catalogs.GitRepo``); the cwd is the repository."""
    from tests.git_catalogs import demo_repository

    repo = demo_repository(tmp_path / "catalog")
    monkeypatch.chdir(repo.root)
    return repo


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A catalog folder: the demo models.yaml with its artifacts folder and keys."""
    shutil.copyfile(DEMO, tmp_path / "models.yaml")
    shutil.copytree(DEMO.parent / "artifacts" / "sha256", tmp_path / "artifacts" / "sha256")
    return with_demo_keys(tmp_path)


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    """A fake Vault (tests/vault_server.py) on a free loopback port, with Transit at ``transit`` and
    KV v2 at ``secret``; ``.addr``, ``.token`` (root), ``.env()``, switches for the faults. Stopped after."""
    from tests.vault_server import FakeVault

    with FakeVault() as server:
        yield server
