"""Edits of the demo catalog's text for diff tests, and a real git repository to commit them in."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import onnx

from catalog.domain.models import Catalog
from catalog.validate import validate_bytes
from tests.helpers import DEMO, ROOT, with_demo_keys
from tests.onnx_models import dense_model

__all__ = [
    "GitRepo",
    "add_version",
    "catalog_of",
    "demo_repository",
    "demo_text",
    "fraud_scorer_bytes",
    "git_env",
    "remove_version",
    "swap_artifact",
]

FRAUD_1_3_0 = "fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0"


def demo_text() -> str:
    return DEMO.read_text(encoding="utf-8")


def catalog_of(text: str) -> Catalog:
    report = validate_bytes(text.encode(), "models.yaml")
    assert report.ok, [f"{p.line}: {p.message}" for p in report.errors]
    assert report.catalog is not None
    return report.catalog


def fraud_scorer_bytes(seed: int) -> bytes:
    """A real ONNX model with fraud-scorer's signature (features[batch,16] -> fraud_probability[batch,1])."""
    return onnx.ModelProto.SerializeToString(dense_model(16, 1, seed=seed))


def _uri(hexdigest: str) -> str:
    return f"artifacts/sha256/{hexdigest[:2]}/{hexdigest}"


def swap_artifact(text: str, old_hex: str, data: bytes) -> tuple[str, str]:
    """``text`` with the version whose digest is ``old_hex`` pointing at ``data`` instead; and the new hex."""
    new_hex = hashlib.sha256(data).hexdigest()
    pattern = re.compile(rf"uri: {re.escape(_uri(old_hex))}\n(\s+)digest: sha256:{old_hex}\n(\s+)size_bytes: \d+\n")
    replacement = rf"uri: {_uri(new_hex)}\n\g<1>digest: sha256:{new_hex}\n\g<2>size_bytes: {len(data)}\n"
    swapped, count = pattern.subn(replacement, text)
    assert count == 1
    return swapped, new_hex


def remove_version(text: str, version: str, next_version: str) -> str:
    """``text`` without the version block ``version`` (followed in the file by ``next_version``)."""
    start = text.index(f"      - version: {version}")
    end = text.index(f"      - version: {next_version}", start)
    return text[:start] + text[end:]


def add_version(text: str, data: bytes, version: str, after: str) -> str:
    """A fraud-scorer version ``version`` of ``data``'s bytes, inserted before the line starting ``after``."""
    hexdigest = hashlib.sha256(data).hexdigest()
    block = (
        f"      - version: {version}\n"
        f"        artifact:\n"
        f"          uri: {_uri(hexdigest)}\n"
        f"          digest: sha256:{hexdigest}\n"
        f"          size_bytes: {len(data)}\n"
        f"        signature:\n"
        f"          inputs:\n"
        f"            - {{name: features, dtype: float32, shape: [batch, 16]}}\n"
        f"          outputs:\n"
        f"            - {{name: fraud_probability, dtype: float32, shape: [batch, 1]}}\n"
        f"        metrics: {{auc: 0.931}}\n"
        f"        trained_at: 2026-11-20\n"
        f"        registered_at: 2026-11-21T09:00:00Z\n"
        f"        stage: candidate\n\n"
    )
    index = text.index(after)
    return text[:index] + block + text[index:]


def git_env() -> dict[str, str]:
    """The environment for git in tests: a fixed identity, no user or system configuration."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }


class GitRepo:
    """A git repository in ``root`` with models.yaml at its top; ``commit`` records the file's text."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.catalog = root / "models.yaml"
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.root), *args], capture_output=True, text=True, env=git_env(), check=True
        )
        return done.stdout.strip()

    def add_artifact(self, data: bytes) -> None:
        hexdigest = hashlib.sha256(data).hexdigest()
        path = self.root / _uri(hexdigest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.git("add", str(path))

    def commit(self, text: str, message: str, tag: str) -> str:
        self.catalog.write_text(text, encoding="utf-8")
        self.git("add", "models.yaml")
        self.git("commit", "-q", "-m", message)
        self.git("tag", tag)
        return self.git("rev-parse", "HEAD")


def demo_repository(root: Path) -> GitRepo:
    """A git repository in ``root`` holding the demo catalog, its artifacts, keys and the built-in
    policies, committed and tagged ``base``."""
    repo = GitRepo(root)
    shutil.copytree(DEMO.parent / "artifacts" / "sha256", repo.root / "artifacts" / "sha256")
    shutil.copytree(ROOT / "policies", repo.root / "policies")
    with_demo_keys(repo.root)
    repo.git("add", "artifacts", "policies", "keys")
    repo.commit(demo_text(), "the demo catalog", "base")
    return repo
