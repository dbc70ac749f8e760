"""register and verify against a real OCI registry (Debian's docker-registry on loopback)."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.helpers import declare_store, sha256_file
from tests.onnx_models import dense_model, save

pytestmark = pytest.mark.slow


def test_register_to_oci_appends_one_block_and_verify_pulls_it_back(cli, workspace: Path, registry):
    url, _storage = registry
    host = url.removeprefix("http://")
    catalog = workspace / "models.yaml"
    declare_store(catalog, "registry", f"oci://{host}/models/fraud-scorer")
    before = catalog.read_text()
    artifact = save(dense_model(seed=41), workspace / "fraud.onnx")
    result = cli(
        "register",
        "fraud-scorer",
        "--version",
        "1.5.0",
        "--artifact",
        artifact,
        "--catalog",
        catalog,
        "--store",
        f"oci://{host}/models/fraud-scorer",
        "--trained-at",
        "2026-11-21",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert re.fullmatch(rf"oci://{re.escape(host)}/models/fraud-scorer@sha256:[0-9a-f]{{64}}", body["uri"])
    assert body["digest"] == "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
    diff = [l for l in difflib.ndiff(before.splitlines(), catalog.read_text().splitlines()) if l[:2] in ("+ ", "- ")]
    assert all(l.startswith("+ ") for l in diff) and len(diff) == 13
    assert f"+           uri: {body['uri']}" in diff
    assert not (workspace / ".modelcat" / "store").exists()  # nothing went to the local store
    verify = cli("verify", "--model", "fraud-scorer", "--catalog", catalog)
    assert verify.exit_code == 0, verify.output
    cached = workspace / ".modelcat/cache/sha256" / body["digest"][7:9] / body["digest"][7:] / "model.onnx"
    assert sha256_file(cached) == body["digest"][7:]


def test_registry_unreachable_leaves_catalog_untouched(cli, workspace: Path):
    from tests.registry import free_port

    catalog = workspace / "models.yaml"
    store = f"oci://127.0.0.1:{free_port()}/models/fraud-scorer"
    declare_store(catalog, "registry", store)
    before = sha256_file(catalog)
    result = cli(
        "register",
        "fraud-scorer",
        "--version",
        "1.5.0",
        "--artifact",
        save(dense_model(seed=42), workspace / "m.onnx"),
        "--catalog",
        catalog,
        "--store",
        "registry",  # by name
    )
    assert result.exit_code == 2  # an environment error, not a finding
    assert "registry unreachable" in result.stderr
    assert sha256_file(catalog) == before


def test_verify_stops_with_an_environment_error_when_the_registry_cannot_be_reached(cli, workspace: Path):
    """Exit 2, not 1: the artifact was never seen, so nothing can be said of it."""
    from tests.registry import free_port

    catalog = workspace / "models.yaml"
    store = f"oci://127.0.0.1:{free_port()}/models/fraud-scorer"
    declare_store(catalog, "registry", store)
    local = "artifacts/sha256/fb/fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0"
    text = catalog.read_text()
    assert text.count(f"uri: {local}") == 1
    catalog.write_text(text.replace(f"uri: {local}", f"uri: {store}@sha256:{'a' * 64}"))
    result = cli("verify", "--model", "fraud-scorer", "--catalog", catalog, "--format", "json")
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "store_unreachable" and "registry unreachable" in error["message"], error
