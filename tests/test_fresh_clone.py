"""The pull-request path in a fresh clone, as CI sees it, with real git and the real CLI: a version
registered in one clone and pushed is verified by `modelcat review` in another clone; a byte flipped
in a committed artifact (models.yaml untouched) blocks the review, naming the digest."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.git_catalogs import FRAUD_1_3_0, git_env
from tests.helpers import DEMO, ROOT, with_demo_keys
from tests.onnx_models import dense_model, save

pytestmark = pytest.mark.slow

MODELCAT = str(Path(sys.executable).with_name("modelcat"))
GITIGNORE = ".modelcat/\ncdktf.out/\n/review/\nartifacts/.staging/\n"  # as `modelcat init` writes it
ENV = git_env()


def run(folder: Path, *command: str, code: int = 0) -> str:
    done = subprocess.run(command, cwd=folder, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == code, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def git(folder: Path, *args: str) -> str:
    return run(folder, "git", *args)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare remote whose main holds the demo catalog, its committed artifacts and the policies."""
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    shutil.copyfile(DEMO, seed / "models.yaml")
    shutil.copytree(ROOT / "artifacts" / "sha256", seed / "artifacts" / "sha256")
    shutil.copytree(ROOT / "policies", seed / "policies")
    with_demo_keys(seed)
    (seed / ".gitignore").write_text(GITIGNORE)
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "the catalog")
    git(seed, "push", "-q", str(remote), "main")
    return remote


def fresh_clone_review(origin: Path, branch: str, where: Path) -> tuple[int, str]:
    """Clone ``branch`` afresh and run `modelcat review origin/main` there, as CI does."""
    git(where.parent, "clone", "-q", "-b", branch, str(origin), str(where))
    command = [MODELCAT, "review", "origin/main", "--now", "2026-11-27"]
    done = subprocess.run(command, cwd=where, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    comment = (where / "review" / "comment.md").read_text()
    return done.returncode, comment


def test_a_registered_version_is_reviewed_in_a_fresh_clone(origin: Path, tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    git(dev, "checkout", "-q", "-b", "fraud-scorer-1.5.0")
    model = save(dense_model(seed=15), tmp_path / "fraud-scorer-1.5.0.onnx")
    run(
        dev,
        MODELCAT,
        "register",
        "fraud-scorer",
        "--version",
        "1.5.0",
        "--artifact",
        str(model),
        "--metric",
        "auc=0.93",
    )
    git(dev, "add", "-A")
    assert "artifacts/sha256/" in git(dev, "status", "--short")  # the artifact is committed with the catalog
    git(dev, "commit", "-qm", "fraud-scorer 1.5.0")
    git(dev, "push", "-q", "origin", "fraud-scorer-1.5.0")

    code, comment = fresh_clone_review(origin, "fraud-scorer-1.5.0", tmp_path / "ci")
    assert code == 0, comment
    assert comment.startswith("## ✅ modelcat review: nothing blocks this change")
    assert "| artifacts the change touches | ✅ | 1 verified |" in comment
    assert "fraud-scorer 1.5.0" in comment


def test_a_flipped_byte_in_a_committed_artifact_blocks_the_review_in_a_fresh_clone(
    origin: Path, tmp_path: Path
) -> None:
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    git(dev, "checkout", "-q", "-b", "flip")
    blob = dev / "artifacts" / "sha256" / FRAUD_1_3_0[:2] / FRAUD_1_3_0
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    git(dev, "commit", "-qam", "one byte of fraud-scorer 1.3.0")
    assert git(dev, "diff", "--name-only", "origin/main").split() == [blob.relative_to(dev).as_posix()]
    git(dev, "push", "-q", "origin", "flip")

    code, comment = fresh_clone_review(origin, "flip", tmp_path / "ci")
    assert code == 1, comment
    actual = "sha256:" + hashlib.sha256(bytes(data)).hexdigest()
    assert f"| fraud-scorer 1.3.0 | digest mismatch: expected sha256:{FRAUD_1_3_0}, got {actual} |" in comment
