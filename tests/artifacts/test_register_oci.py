"""register and verify against a real OCI registry (Debian's docker-registry on loopback)."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path

from tests.conftest import declare_store, sha256_file
from tests.onnx_models import dense_model, save


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
    assert result.exit_code == 1
    assert "registry unreachable" in result.stderr
    assert sha256_file(catalog) == before
