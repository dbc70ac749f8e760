"""register / verify / inspect with the local content-addressed store, and every bad artifact."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from catalog.artifacts.hashing import hash_file
from catalog.artifacts.onnx_facts import inspect_onnx
from catalog.artifacts.stores.local import blob_path
from tests.helpers import DEMO, declare_store, register, sha256_file, snapshot, without_signatures
from tests.onnx_models import dense_model, point_external_data_at, save, save_with_external_data


def test_register_appends_exactly_the_new_version_block(cli, workspace: Path):
    before = (workspace / "models.yaml").read_text()
    artifact = save(dense_model(seed=7), workspace / "out" / "fraud.onnx")
    result = register(cli, workspace, artifact, "1.5.0", "--metric", "auc=0.935", "--label", "dataset=txn-2026-11")
    assert result.exit_code == 0, result.output
    digest = "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
    after = (workspace / "models.yaml").read_text()
    added = [l[2:] for l in difflib.ndiff(before.splitlines(), after.splitlines()) if l.startswith("+ ")]
    removed = [l for l in difflib.ndiff(before.splitlines(), after.splitlines()) if l.startswith("- ")]
    assert removed == []
    stored = f"artifacts/sha256/{digest[7:9]}/{digest[7:]}"  # the catalog's default store
    assert added[:5] == [
        "      - version: 1.5.0",
        "        artifact:",
        f"          uri: {stored}",
        f"          digest: {digest}",
        f"          size_bytes: {artifact.stat().st_size}",
    ]
    assert "        metrics: {auc: 0.935}" in added and "        trained_at: 2026-11-20" in added
    assert '        labels: {dataset: "txn-2026-11"}' in added and "        stage: candidate" in added
    # inserted right after fraud-scorer 1.4.0, before the next model; every comment is still there
    assert after.index("version: 1.5.0") < after.index("- name: recommender")
    assert [l for l in before.splitlines() if "#" in l] == [l for l in after.splitlines() if "#" in l]
    assert (workspace / stored).read_bytes() == artifact.read_bytes()
    verify = cli("verify", "--model", "fraud-scorer", "--catalog", workspace / "models.yaml")
    assert verify.exit_code == 0, verify.output
    assert "4 artifacts checked: 4 verified, 0 failed" in verify.stdout


def test_register_external_data_digest_covers_every_file(cli, workspace: Path):
    model_path = save_with_external_data(dense_model(seed=3), workspace / "ext")
    result = register(cli, workspace, model_path, "1.5.0", "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    stored = workspace / body["uri"]
    assert sorted(p.name for p in stored.iterdir()) == ["model.onnx", "weights.bin"]
    assert body["size_bytes"] == sum(p.stat().st_size for p in stored.iterdir())
    assert body["digest"] != "sha256:" + hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert cli("verify", "--catalog", workspace / "models.yaml").exit_code == 0
    # change one byte of weights.bin: the artifact digest no longer matches
    weights = stored / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[0] ^= 0xFF
    weights.write_bytes(bytes(data))
    verify = cli("verify", "--catalog", workspace / "models.yaml")
    assert verify.exit_code == 1
    assert "FAIL fraud-scorer         1.5.0" in verify.stdout and "digest mismatch" in verify.stdout


def test_verify_reports_a_swapped_artifact(cli, workspace: Path):
    target = workspace / "artifacts/sha256/fb/fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0"
    target.write_bytes(save(dense_model(seed=99), workspace / "other.onnx").read_bytes())
    result = cli("verify", "--catalog", workspace / "models.yaml", "--format", "json")
    assert result.exit_code == 1
    failed = [r for r in json.loads(result.stdout)["results"] if not r["ok"]]
    assert [(r["model"], r["version"]) for r in failed] == [("fraud-scorer", "1.3.0")]
    actual = "sha256:" + hashlib.sha256(target.read_bytes()).hexdigest()
    assert failed[0]["message"] == (
        "digest mismatch: expected sha256:fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0, "
        f"got {actual}"
    )


def test_verify_reports_a_missing_artifact_and_a_wrong_signature(cli, workspace: Path):
    (workspace / "artifacts/sha256/90/90f0473d1c8d9611ede3596c11f811eb618875e923e1e3f981bc620db18701e1").unlink()
    text = (workspace / "models.yaml").read_text()
    text = text.replace(
        "{name: relevance, dtype: float32, shape: [batch, 20]}\n        metrics: {ndcg@10: 0.538",
        "{name: relevance, dtype: float32, shape: [batch, 21]}\n        metrics: {ndcg@10: 0.538",
    )
    (workspace / "models.yaml").write_text(text)
    result = cli("verify", "--model", "search-ranker", "--catalog", workspace / "models.yaml", "--format", "json")
    assert result.exit_code == 1
    messages = {r["version"]: r["message"] for r in json.loads(result.stdout)["results"]}
    assert messages["3.1.0"].startswith("not found in the local store")
    assert messages["3.2.0"] == (
        "the artifact's signature differs from the catalog's: output 'relevance': dimension 1 21 -> 20"
    )


def _bad_artifacts(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = save(dense_model(seed=1), tmp / "good.onnx").read_bytes()
    files = {
        "truncated": (good[: len(good) // 2], "is not a valid ONNX model (truncated or corrupt"),
        "random-bytes": (bytes(range(7, 250)) * 13, "is not a valid ONNX model"),
        "pickle": (pickle.dumps({"coef": [float(i) for i in range(300)]}), "is a Python pickle"),
        "empty": (b"", "is empty"),
    }
    out = {}
    for name, (data, words) in files.items():
        path = tmp / f"{name}.onnx"
        path.write_bytes(data)
        out[name] = (path, words)
    zipped = tmp / "zipped.onnx"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("model.onnx", good)
    out["zip"] = (zipped, "is a zip archive")
    return out


@pytest.mark.parametrize("case", ["truncated", "random-bytes", "pickle", "empty", "zip"])
def test_non_onnx_content_is_refused_and_nothing_is_written(cli, workspace: Path, case: str):
    path, words = _bad_artifacts(workspace / "bad")[case]
    catalog_before, store_before = sha256_file(workspace / "models.yaml"), snapshot(workspace / "artifacts")
    result = register(cli, workspace, path)
    assert result.exit_code == 1, result.output
    assert f"error: {path}: {words}" in result.stderr
    assert sha256_file(workspace / "models.yaml") == catalog_before
    assert snapshot(workspace / "artifacts") == store_before
    assert cli("inspect", path).exit_code == 1


def test_size_limit_counts_every_byte(cli, workspace: Path):
    artifact = save(dense_model(hidden=64, seed=5), workspace / "m.onnx")
    size = artifact.stat().st_size
    assert size > 2752  # above the catalog's existing fraud-scorer artifacts
    text = (
        (workspace / "models.yaml")
        .read_text()
        .replace("max_artifact_bytes: 104857600", f"max_artifact_bytes: {size - 1}")
    )
    (workspace / "models.yaml").write_text(text)
    before = sha256_file(workspace / "models.yaml")
    result = register(cli, workspace, artifact)
    assert result.exit_code == 1
    assert f"is {size:,} bytes, over the limit of {size - 1:,}" in result.stderr
    assert sha256_file(workspace / "models.yaml") == before
    (workspace / "models.yaml").write_text(
        text.replace(f"max_artifact_bytes: {size - 1}", f"max_artifact_bytes: {size}")
    )
    assert register(cli, workspace, artifact).exit_code == 0  # exactly at the limit is fine


def test_external_data_counts_toward_the_limit(cli, workspace: Path):
    model_path = save_with_external_data(dense_model(hidden=512, seed=2), workspace / "ext")
    assert model_path.stat().st_size < 4000 < (model_path.parent / "weights.bin").stat().st_size
    text = (workspace / "models.yaml").read_text().replace("max_artifact_bytes: 104857600", "max_artifact_bytes: 4000")
    (workspace / "models.yaml").write_text(text)
    result = register(cli, workspace, model_path)
    assert result.exit_code == 1
    assert "with its external data is over" in result.stderr


def test_sparse_3gb_file_is_refused_without_reading_it(cli, workspace: Path):
    stored = snapshot(workspace / "artifacts")
    sparse = workspace / "huge.onnx"
    with open(sparse, "wb") as handle:
        handle.truncate(3 * 1024**3)
    result = register(cli, workspace, sparse)
    assert result.exit_code == 1
    assert "is 3,221,225,472 bytes, over the limit of 104,857,600" in result.stderr
    assert snapshot(workspace / "artifacts") == stored


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("../outside.bin", "climbs out of the model's folder"),
        ("a/../../outside.bin", "climbs out of the model's folder"),
        ("/etc/passwd", "is an absolute path"),
    ],
)
def test_external_data_must_stay_inside_the_artifact(cli, workspace: Path, location: str, words: str):
    model_path = save_with_external_data(dense_model(seed=4), workspace / "ext" / "m")
    shutil.copyfile(model_path.parent / "weights.bin", workspace / "ext" / "outside.bin")
    point_external_data_at(model_path, location)
    stored = snapshot(workspace / "artifacts")
    result = register(cli, workspace, model_path)
    assert result.exit_code == 1
    assert f"external data {location!r} of model.onnx {words}" in result.stderr
    assert snapshot(workspace / "artifacts") == stored
    with pytest.raises(Exception, match=words):
        inspect_onnx(model_path)


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_external_data_links_are_refused(cli, workspace: Path, link: str):
    model_path = save_with_external_data(dense_model(seed=4), workspace / "ext")
    real = workspace / "weights.real"
    (model_path.parent / "weights.bin").rename(real)
    (os.symlink if link == "symlink" else os.link)(real, model_path.parent / "weights.bin")
    result = register(cli, workspace, model_path)
    assert result.exit_code == 1
    words = "is a symbolic link" if link == "symlink" else "is a hard link"
    assert words in result.stderr
    assert sha256_file(workspace / "models.yaml") == sha256_file(DEMO)


def test_breaking_signature_is_refused_naming_the_application(cli, workspace: Path):
    artifact = save(dense_model(n_in=20, seed=1), workspace / "m.onnx")
    result = register(cli, workspace, artifact)
    assert result.exit_code == 1
    assert "application 'checkout' routes 1.3.0: input 'features': dimension 1 16 -> 20" in result.stderr
    assert sha256_file(workspace / "models.yaml") == sha256_file(DEMO)


def test_additive_signature_change_is_a_note(cli, workspace: Path):
    artifact = save(dense_model(seed=1, extra_output=True), workspace / "m.onnx")
    result = register(cli, workspace, artifact)
    assert result.exit_code == 0, result.output
    assert "note: checkout (1.3.0): output 'logits' added (callers may ignore it)" in result.stdout


def test_duplicate_version_and_duplicate_bytes_are_refused(cli, workspace: Path):
    artifact = save(dense_model(seed=8), workspace / "m.onnx")
    assert register(cli, workspace, artifact, "1.5.0").exit_code == 0
    again = register(cli, workspace, save(dense_model(seed=9), workspace / "n.onnx"), "1.5.0")
    assert again.exit_code == 1 and "fraud-scorer already has version 1.5.0" in again.stderr
    same_bytes = register(cli, workspace, artifact, "1.6.0")
    assert same_bytes.exit_code == 1 and "already registered as fraud-scorer 1.5.0" in same_bytes.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root (CI runs as root)")
def test_read_only_store_is_a_clear_error(cli, workspace: Path):
    store = workspace / "ro-store"
    store.mkdir()
    declare_store(workspace / "models.yaml", "read-only", "ro-store")
    before = sha256_file(workspace / "models.yaml")
    subprocess.run(["mount", "--bind", str(store), str(store)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(store)], check=True)
        result = register(
            cli, workspace, save(dense_model(seed=1), workspace / "m.onnx"), "1.5.0", "--store", str(store)
        )
    finally:
        subprocess.run(["umount", str(store)], check=True)
    assert result.exit_code == 1
    assert f"error: {store}: store directory is read-only" in result.stderr
    assert sha256_file(workspace / "models.yaml") == before


def test_inspect_prints_the_facts(cli, workspace: Path):
    path = save_with_external_data(dense_model(seed=1), workspace / "ext")
    result = cli("inspect", path, "--format", "json")
    facts = json.loads(result.stdout)
    assert facts["ir_version"] == 9 and facts["opsets"] == {"ai.onnx": 17}
    assert facts["external_files"] == ["weights.bin"]
    assert facts["signature"]["inputs"] == [{"name": "features", "dtype": "float32", "shape": ["batch", 16]}]
    text = cli("inspect", path).stdout
    assert "input  features: float32[batch, 16]" in text and "external data: weights.bin" in text


def test_local_store_layout_is_content_addressed(workspace: Path):
    from catalog.artifacts.staging import stage_artifact
    from catalog.artifacts.stores.local import LocalStore

    store = LocalStore(Path(".modelcat/store"), workspace)
    source = save(dense_model(seed=11), workspace / "m.onnx")
    staged = stage_artifact(source, store.staging_dir(), limit=10**6)
    uri = store.put(staged)
    assert uri == blob_path(Path(".modelcat/store"), staged.digest).as_posix()
    assert hash_file(str(workspace / uri)).digest == staged.digest
    assert list((workspace / ".modelcat/store/.staging").iterdir()) == []


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), *args],
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )


def test_verify_changed_since_checks_only_new_or_changed_artifacts(cli, workspace: Path):
    _git(workspace, "init", "-q")
    _git(workspace, "add", "models.yaml", "artifacts")  # the catalog and its committed store
    _git(workspace, "commit", "-qm", "base")
    assert register(cli, workspace, save(dense_model(seed=21), workspace / "m.onnx")).exit_code == 0
    result = cli("verify", "--changed-since", "HEAD", "--catalog", workspace / "models.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [(r["model"], r["version"]) for r in json.loads(result.stdout)["results"]] == [("fraud-scorer", "1.5.0")]
    bad = cli("verify", "--changed-since", "no-such-ref", "--catalog", workspace / "models.yaml")
    assert bad.exit_code == 2 and "'no-such-ref' is not a commit" in bad.stderr


def _store_is_consistent(store: Path) -> None:
    """Every visible object's name is the sha256 of its bytes: nothing partial outside .staging."""
    for blob in (store / "sha256").rglob("*") if (store / "sha256").exists() else []:
        if blob.is_file():
            assert hash_file(str(blob)).digest == "sha256:" + blob.name, f"partial object {blob}"


@pytest.mark.slow
def test_kill_9_during_register_leaves_old_or_new_catalog_and_no_partial_object(workspace: Path):
    import random
    import sys
    import time

    artifact = save(dense_model(hidden=150_000, seed=31), workspace / "big.onnx")  # about 10 MB
    catalog = workspace / "models.yaml"
    old = catalog.read_bytes()
    command = [
        sys.executable,
        "-m",
        "catalog.cli.main",
        "register",
        "fraud-scorer",
        "--version",
        "1.5.0",
        "--artifact",
        str(artifact),
        "--trained-at",
        "2026-11-20",
        "--catalog",
        str(catalog),
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    full = time.perf_counter() - start
    new = catalog.read_bytes()
    assert new != old and b"version: 1.5.0" in new
    rng = random.Random(3)
    for _ in range(8):
        catalog.write_bytes(old)
        blob_path(workspace / "artifacts", "sha256:" + sha256_file(artifact)).unlink(missing_ok=True)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * full)
        proc.kill()
        proc.wait(timeout=30)
        now = catalog.read_bytes()
        if now != old:  # then it is the old file plus the whole new block, nothing else
            lines = now.decode().splitlines(keepends=True)
            first = lines.index("      - version: 1.5.0\n")
            last = next(i for i in range(first, len(lines)) if lines[i] == "        stage: candidate\n")
            assert "".join(lines[:first] + lines[last + 1 :]).encode() == old
            assert len(lines[first : last + 1]) == len(new.splitlines()) - len(old.splitlines())
        _store_is_consistent(workspace / "artifacts")


def _catalog_pointing_at(workspace: Path, stored: Path, size: int, digest: str) -> None:
    """Make fraud-scorer 1.3.0 name ``stored`` (a store object) with the given digest and size (the
    demo's signatures, which are for other bytes, left out)."""
    text = without_signatures((workspace / "models.yaml").read_text())
    old_hex = "fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0"
    text = text.replace(f"artifacts/sha256/fb/{old_hex}", stored.relative_to(workspace).as_posix())
    text = text.replace(f"sha256:{old_hex}", digest).replace(
        "size_bytes: 2752\n        signature:\n          inputs:\n            - {name: features, dtype: float32, shape: [batch, 16]}\n          outputs:\n            - {name: fraud_probability, dtype: float32, shape: [batch, 1]}\n        metrics: {auc: 0.917",
        f"size_bytes: {size}\n        signature:\n          inputs:\n            - {{name: features, dtype: float32, shape: [batch, 16]}}\n          outputs:\n            - {{name: fraud_probability, dtype: float32, shape: [batch, 1]}}\n        metrics: {{auc: 0.917",
        1,
    )
    (workspace / "models.yaml").write_text(text)


def _store_file(workspace: Path, data: bytes) -> tuple[Path, str]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(workspace / "artifacts", digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, digest


@pytest.mark.parametrize("case", ["truncated", "random-bytes", "pickle", "zip"])
def test_verify_names_a_stored_object_that_is_not_onnx(cli, workspace: Path, case: str):
    path, words = _bad_artifacts(workspace / "bad")[case]
    stored, digest = _store_file(workspace, path.read_bytes())
    _catalog_pointing_at(workspace, stored, stored.stat().st_size, digest)
    result = cli("verify", "--model", "fraud-scorer", "--catalog", workspace / "models.yaml", "--format", "json")
    assert result.exit_code == 1, result.output
    [failed] = [r for r in json.loads(result.stdout)["results"] if not r["ok"]]
    assert failed["version"] == "1.3.0"
    assert words in failed["message"]


@pytest.mark.parametrize("location", ["../outside.bin", "a/../../outside.bin", "/etc/hostname", "symlink"])
def test_verify_refuses_stored_external_data_that_escapes(cli, workspace: Path, location: str):
    folder = workspace / "ext" / "obj"
    model_path = save_with_external_data(dense_model(seed=5), folder)
    if location == "symlink":
        (folder / "weights.bin").rename(workspace / "ext" / "real.bin")
        os.symlink(workspace / "ext" / "real.bin", folder / "weights.bin")
    else:
        shutil.copyfile(folder / "weights.bin", workspace / "ext" / "outside.bin")
        point_external_data_at(model_path, location)
    files = sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())
    from catalog.artifacts.hashing import manifest_digest

    digest = manifest_digest([(p.relative_to(folder).as_posix(), hash_file(str(p))) for p in files])
    stored = blob_path(workspace / "artifacts", digest)
    stored.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(stored)
    _catalog_pointing_at(workspace, stored, sum(p.stat().st_size for p in stored.iterdir()), digest)
    result = cli("verify", "--model", "fraud-scorer", "--catalog", workspace / "models.yaml", "--format", "json")
    assert result.exit_code == 1, result.output
    [failed] = [r for r in json.loads(result.stdout)["results"] if not r["ok"]]
    words = (
        "is a symbolic link" if location == "symlink" else "absolute path" if location.startswith("/") else "climbs out"
    )
    assert words in failed["message"]


def test_verify_stops_at_the_limit_when_the_stored_object_is_bigger_than_the_catalog_says(cli, workspace: Path):
    data = save(dense_model(hidden=64, seed=6), workspace / "m.onnx").read_bytes()
    stored, digest = _store_file(workspace, data)
    text = (workspace / "models.yaml").read_text().replace("max_artifact_bytes: 104857600", "max_artifact_bytes: 3000")
    (workspace / "models.yaml").write_text(text)
    _catalog_pointing_at(workspace, stored, 2752, digest)
    result = cli("verify", "--model", "fraud-scorer", "--catalog", workspace / "models.yaml", "--format", "json")
    assert result.exit_code == 1
    [failed] = [r for r in json.loads(result.stdout)["results"] if not r["ok"]]
    assert failed["message"] == f"is {len(data):,} bytes, over the limit of 3,000"
