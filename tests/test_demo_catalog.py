"""The demo catalog is valid and its artifacts are real: the bytes match the digests and sizes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from cryptography.hazmat.primitives import serialization

from catalog.artifacts.onnx_facts import inspect_onnx
from catalog.validate import validate_file
from tests.helpers import DEMO, ROOT


def _demo():
    report = validate_file(DEMO)
    assert report.ok, report.problems
    return report.catalog


def test_demo_catalog_is_valid_without_warnings():
    report = validate_file(DEMO)
    assert report.ok and report.problems == []


def test_demo_catalog_is_realistic():
    catalog = _demo()
    assert len(catalog.models) >= 4 and all(len(m.versions) >= 2 for m in catalog.models)
    assert len(catalog.applications) == 3
    splits = [sorted(r.weight for r in b.routes) for a in catalog.applications for b in a.bindings]
    assert [50, 50] in splits  # an A/B test
    assert [10, 90] in splits  # a 10 % canary


VERSIONS = [(m.name, v) for m in _demo().models for v in m.versions]


@pytest.mark.parametrize(("model", "version"), VERSIONS, ids=[f"{m}-{v.version}" for m, v in VERSIONS])
def test_demo_artifact_matches_digest_size_and_signature(model, version):
    path = ROOT / version.artifact.uri
    data = path.read_bytes()
    assert len(data) == version.artifact.size_bytes
    assert "sha256:" + hashlib.sha256(data).hexdigest() == version.artifact.digest
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    dims = lambda t: [d.dim_param or d.dim_value for d in t.type.tensor_type.shape.dim]
    assert [(t.name, dims(t)) for t in proto.graph.input] == [(s.name, s.shape) for s in version.signature.inputs]
    assert [(t.name, dims(t)) for t in proto.graph.output] == [(s.name, s.shape) for s in version.signature.outputs]


def _demo_models_script():
    spec = importlib.util.spec_from_file_location("make_demo_models", ROOT / "artifacts" / "make_demo_models.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_demo_artifacts_regenerate_byte_identical():
    module = _demo_models_script()
    built = {hashlib.sha256(data).hexdigest() for _, data in module.build_all()}
    catalogued = {v.artifact.digest.removeprefix("sha256:") for _, v in VERSIONS}
    assert built == catalogued


def test_make_demo_models_builds_a_new_version_of_a_demo_model(tmp_path, capsys):
    """``--new MODEL VERSION FILE``: the README's tour registers a version the catalog does not have."""
    module = _demo_models_script()
    file = tmp_path / "fraud-scorer-1.5.0.onnx"
    assert module.main(["--new", "fraud-scorer", "1.5.0", str(file)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1.5.0"
    facts = inspect_onnx(file)
    (fraud,) = [m for m in _demo().models if m.name == "fraud-scorer"]
    assert facts.signature == fraud.versions[-1].signature  # the same contract: it may share traffic
    digest = "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()
    assert digest not in {v.artifact.digest for _, v in VERSIONS}  # new bytes
    with pytest.raises(SystemExit, match="no demo model 'nope'; the demo models are fraud-scorer, recommender"):
        module.main(["--new", "nope", "1.0.0", str(tmp_path / "nope.onnx")])


@pytest.mark.parametrize(("model", "version"), VERSIONS, ids=[f"{m}-{v.version}" for m, v in VERSIONS])
def test_every_demo_version_is_signed_by_the_demo_key_for_production(model, version):
    """Production requires signatures and trusts the demo key; every version verifies for it, so that
    whichever a test or a tour routes there serves."""
    from catalog.signing.verify import verify_version

    verified = verify_version(_demo(), ROOT, model, version.version, "production")
    assert verified is not None and (verified.key, verified.key_version) == ("demo-release", 1)


def test_demo_key_is_checked_in_as_a_demo_key_and_production_trusts_only_it():
    catalog = _demo()
    assert catalog.trust is not None
    (production,) = [e for e in catalog.trust.environments if e.environment == "production"]
    assert production.require_signatures and production.keys == ["demo-release"]
    private = (ROOT / "keys" / "demo-release.pem").read_bytes()
    assert private.startswith(b"DEMO KEY")  # said in the file itself, before the key
    assert "never for production" in (ROOT / "keys" / "README.md").read_text()
    public = serialization.load_pem_public_key((ROOT / "keys" / "demo-release.pub.pem").read_bytes())
    assert serialization.load_pem_private_key(private, None).public_key() == public  # its public half


def test_a_demo_bundle_verifies_with_the_stock_model_signing_cli():
    (fraud,) = [m for m in _demo().models if m.name == "fraud-scorer"]
    (version,) = [v for v in fraud.versions if v.version == "1.4.0"]
    assert version.artifact.bundle is not None
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("model_signing")),  # the stock CLI beside our interpreter
            "verify",
            "key",
            str(ROOT / version.artifact.uri),
            "--signature",
            str(ROOT / version.artifact.bundle.uri),
            "--public_key",
            str(ROOT / "keys" / "demo-release.pub.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "Verification succeeded" in done.stdout, done.stdout + done.stderr
