"""Artifact-only changes are reviewed: a blob changed in a store while models.yaml stays the same is
verified by `review` (and `verify --changed-since`), and blocks the change when it does not verify;
a changed blob that no version names is reported."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.git_catalogs import FRAUD_1_3_0, GitRepo
from tests.helpers import run_review
from tests.onnx_models import dense_model, save_with_external_data

BLOB = Path("artifacts/sha256") / FRAUD_1_3_0[:2] / FRAUD_1_3_0


def _flip_one_byte(path: Path) -> str:
    """Flip the last byte of ``path`` (writable or not); the new bytes' digest."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return "sha256:" + hashlib.sha256(bytes(data)).hexdigest()


def test_an_artifact_only_change_is_reviewed(cli, repo: GitRepo) -> None:
    catalog_before = Path("models.yaml").read_bytes()
    actual = _flip_one_byte(BLOB)
    repo.git("commit", "-qam", "artifacts only: one byte of fraud-scorer 1.3.0")
    assert Path("models.yaml").read_bytes() == catalog_before
    code, comment, sarif, report = run_review(cli, "HEAD~1")
    assert code == 1, comment
    assert "| artifacts the change touches | ❌ | 1 of 1 failed |" in comment
    assert f"digest mismatch: expected sha256:{FRAUD_1_3_0}, got {actual}" in comment
    assert f"fraud-scorer 1.3.0: its artifact's files differ from HEAD~1 ({BLOB.as_posix()})" in comment
    assert [(a["model"], a["version"], a["ok"]) for a in report["artifacts"]] == [("fraud-scorer", "1.3.0", False)]
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["VERIFY"]
    verify = cli("verify", "--changed-since", "HEAD~1", "--format", "json")
    assert verify.exit_code == 1
    assert [(r["model"], r["version"]) for r in json.loads(verify.stdout)["results"]] == [("fraud-scorer", "1.3.0")]

    # not committed yet, or even deleted: the same
    repo.git("reset", "-q", "--hard", "HEAD~1")
    BLOB.unlink()
    code, comment, _, _ = run_review(cli, "HEAD")
    assert code == 1 and "not found in the local store" in comment


def test_a_changed_file_of_a_multi_file_artifact_is_reviewed(cli, repo: GitRepo, tmp_path: Path) -> None:
    model = save_with_external_data(dense_model(seed=12), tmp_path / "ext")
    args = ("--version", "1.5.0", "--artifact", model, "--trained-at", "2026-11-20", "--format", "json")
    registered = cli("register", "fraud-scorer", *args)
    assert registered.exit_code == 0, registered.output
    stored = Path(json.loads(registered.stdout)["uri"])
    repo.git("add", "models.yaml", str(stored))
    repo.git("commit", "-qm", "fraud-scorer 1.5.0")
    assert run_review(cli, "HEAD")[0] == 0
    _flip_one_byte(stored / "weights.bin")
    code, comment, _, report = run_review(cli, "HEAD")
    assert code == 1
    assert [(a["version"], a["ok"]) for a in report["artifacts"]] == [("1.5.0", False)]
    assert f"({stored.as_posix()}/weights.bin)" in comment


def test_a_changed_blob_that_no_version_names_is_reported(cli, repo: GitRepo) -> None:
    """It cannot be served (no version names it), so it does not block; the comment lists it, and
    a later change that names it verifies it."""
    data = b"not a model, and named by no version"
    hexdigest = hashlib.sha256(data).hexdigest()
    orphan = Path("artifacts/sha256") / hexdigest[:2] / hexdigest
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(data)
    code, comment, _, report = run_review(cli, "HEAD")
    assert code == 0, comment
    assert (
        f"store files that no version names changed (not verified, nothing serves them): {orphan.as_posix()} (added)"
        in comment
    )
    assert report["artifacts"] == []
