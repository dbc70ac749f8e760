"""Where an endpoint's bytes come from: catalog-relative paths, file:// and oci:// (a real registry)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.artifacts.staging import stage_artifact
from catalog.artifacts.stores.oci import OciStore
from catalog.domain.models import Catalog
from catalog.errors import ArtifactError, DigestMismatch
from catalog.provider.artifacts import resolve_artifact
from catalog.validate import load_catalog
from tests.provider.terraform_fixtures import DEMO, FRAUD_130, FRAUD_140, ROOT
from tests.registry import RegistryUnavailable, running_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEMO)


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    try:
        with running_registry() as (url, _):
            yield url
    except RegistryUnavailable as e:
        pytest.fail(str(e), pytrace=False)


def test_a_relative_path_resolves_against_the_catalogs_folder(catalog: Catalog) -> None:
    path = resolve_artifact(FRAUD_130["artifact"], FRAUD_130["digest"], "fraud-scorer", "1.3.0", ROOT, catalog)
    assert path == (ROOT / FRAUD_130["artifact"]).resolve()
    uri = path.as_uri()
    assert resolve_artifact(uri, FRAUD_130["digest"], "fraud-scorer", "1.3.0", Path("/nowhere"), catalog) == path


def test_wrong_bytes_and_missing_files_are_refused(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(DigestMismatch) as info:
        resolve_artifact(FRAUD_130["artifact"], FRAUD_140["digest"], "fraud-scorer", "1.4.0", ROOT, catalog)
    assert FRAUD_130["digest"] in str(info.value) and FRAUD_140["digest"] in str(info.value)
    with pytest.raises(ArtifactError, match="not found"):
        resolve_artifact("missing.onnx", FRAUD_130["digest"], "fraud-scorer", "1.3.0", tmp_path, catalog)
    with pytest.raises(ArtifactError, match="is a path"):
        resolve_artifact("https://example.com/m.onnx", FRAUD_130["digest"], "fraud-scorer", "1.3.0", tmp_path, None)


def test_a_file_the_catalog_does_not_list_is_checked_against_its_own_size(tmp_path: Path) -> None:
    copy = tmp_path / "model.onnx"
    shutil.copyfile(ROOT / FRAUD_130["artifact"], copy)
    assert resolve_artifact("model.onnx", FRAUD_130["digest"], "other", "0.1.0", tmp_path, None) == copy.resolve()


def test_an_oci_artifact_is_pulled_into_the_cache_and_verified(catalog: Catalog, registry: str, tmp_path: Path) -> None:
    store = OciStore(f"oci://{registry.removeprefix('http://')}/modelcat/fraud-scorer", tmp_path / "push-cache")
    uri = store.put(stage_artifact(ROOT / FRAUD_130["artifact"], store.staging_dir(), limit=1 << 20))
    base = tmp_path / "catalog-folder"
    base.mkdir()
    path = resolve_artifact(uri, FRAUD_130["digest"], "fraud-scorer", "1.3.0", base, catalog)
    assert path.is_file() and path.is_relative_to(base / ".modelcat" / "cache")
    assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == FRAUD_130["digest"]
    with pytest.raises(ArtifactError, match="size is unknown"):
        resolve_artifact(uri, FRAUD_130["digest"], "fraud-scorer", "1.3.0", base, None)
