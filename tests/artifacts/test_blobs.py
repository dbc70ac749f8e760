"""put_blob / fetch_blob: small files (signature bundles) kept by digest in the folder and OCI stores,
verified on every fetch."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from catalog.artifacts.stores.local import LocalStore, blob_path
from catalog.artifacts.stores.oci import BLOB_ARTIFACT_TYPE, OciStore
from catalog.errors import ArtifactTooLarge, DigestMismatch, StoreError
from tests.artifacts.test_oci_store import blob_file, manifest_of

DATA = b'{"a signature bundle": true}'
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(Path("artifacts"), tmp_path)


def test_a_blob_is_stored_at_its_digest_read_only(local: LocalStore, tmp_path: Path) -> None:
    uri = local.put_blob(DATA)
    path = blob_path(tmp_path / "artifacts", DIGEST)
    assert uri == path.relative_to(tmp_path).as_posix()
    assert path.read_bytes() == DATA and stat.S_IMODE(path.stat().st_mode) == 0o444
    assert local.put_blob(DATA) == uri
    assert local.fetch_blob(uri, DIGEST, 1024) == DATA
    assert not any((tmp_path / "artifacts" / ".staging").iterdir())


def test_a_damaged_blob_is_refused_and_put_again_replaces_it(local: LocalStore, tmp_path: Path) -> None:
    uri = local.put_blob(DATA)
    path = blob_path(tmp_path / "artifacts", DIGEST)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(DigestMismatch, match=DIGEST):
        local.fetch_blob(uri, DIGEST, 1024)
    assert local.put_blob(DATA) == uri
    assert local.fetch_blob(uri, DIGEST, 1024) == DATA


def test_a_missing_or_too_large_blob_is_refused(local: LocalStore) -> None:
    uri = local.put_blob(DATA)
    with pytest.raises(ArtifactTooLarge, match="limit of 10 bytes"):
        local.fetch_blob(uri, DIGEST, 10)
    with pytest.raises(StoreError, match="not found"):
        local.fetch_blob("artifacts/sha256/00/" + "0" * 64, "sha256:" + "0" * 64, 1024)


@pytest.mark.slow
def test_a_blob_in_a_registry_is_one_layer_of_its_own_manifest(registry: tuple[str, Path], tmp_path: Path) -> None:
    url, storage = registry
    store = OciStore(f"oci://{url.removeprefix('http://')}/modelcat/blobs", tmp_path / "cache")
    uri = store.put_blob(DATA)
    assert store.put_blob(DATA) == uri
    manifest = manifest_of(uri)
    assert manifest["artifactType"] == BLOB_ARTIFACT_TYPE
    assert [(layer["digest"], layer["size"]) for layer in manifest["layers"]] == [(DIGEST, len(DATA))]
    assert store.fetch_blob(uri, DIGEST, 1024) == DATA
    with pytest.raises(DigestMismatch, match="the manifest's layer"):
        store.fetch_blob(uri, "sha256:" + "1" * 64, 1024)
    with pytest.raises(ArtifactTooLarge):
        store.fetch_blob(uri, DIGEST, 10)
    blob_file(storage, DIGEST).write_bytes(b"tampered bytes in the registry")
    with pytest.raises(DigestMismatch, match=DIGEST):
        store.fetch_blob(uri, DIGEST, 1024)
