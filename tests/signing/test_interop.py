"""A bundle `modelcat sign` writes verifies with the stock OpenSSF CLI: `model_signing verify key
ARTIFACT --signature BUNDLE --public_key PEM`, ARTIFACT being the path the catalog's URI names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog.register import register_version
from catalog.sign import sign_version
from tests.onnx_models import dense_model, save_with_external_data
from tests.signing.conftest import URI_140, Signable
from tests.signing.stock_cli import stock_verify

pytestmark = pytest.mark.slow  # a process of the stock CLI per check


def test_the_stock_cli_verifies_a_single_file_artifact(signable: Signable, tmp_path: Path) -> None:
    record = sign_version(signable.catalog_path, "fraud-scorer", "1.4.0", str(signable.key("release")))
    public = signable.root / "keys" / "release.pub.pem"
    done = stock_verify(signable.root / URI_140, signable.root / record.uri, public)
    assert done.returncode == 0 and "Verification succeeded" in done.stdout, done.stdout + done.stderr
    copy = tmp_path / "changed"
    copy.write_bytes((signable.root / URI_140).read_bytes()[:-1] + b"\0")
    refused = stock_verify(copy, signable.root / record.uri, public)
    assert refused.returncode == 1 and "Hash mismatch" in refused.stderr


def test_the_stock_cli_verifies_every_file_of_an_artifact_with_external_data(
    signable: Signable, tmp_path: Path
) -> None:
    source = save_with_external_data(dense_model(seed=31), tmp_path / "source")
    registered = register_version(signable.catalog_path, "fraud-scorer", "1.5.0", source)
    artifact = signable.root / registered.uri
    assert sorted(p.name for p in artifact.iterdir()) == ["model.onnx", "weights.bin"]
    record = sign_version(signable.catalog_path, "fraud-scorer", "1.5.0", str(signable.key("release")))
    public = signable.root / "keys" / "release.pub.pem"
    done = stock_verify(artifact, signable.root / record.uri, public)
    assert done.returncode == 0 and "Verification succeeded" in done.stdout, done.stdout + done.stderr
    copy = tmp_path / "copy"
    shutil.copytree(artifact, copy)
    (copy / "weights.bin").chmod(0o644)
    (copy / "weights.bin").write_bytes(b"\0" * (copy / "weights.bin").stat().st_size)
    refused = stock_verify(copy, signable.root / record.uri, public)
    assert refused.returncode == 1 and "weights.bin" in refused.stderr
