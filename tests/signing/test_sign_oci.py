"""Signing a version kept in an OCI registry: the bundle goes to the same repository, and verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.register import register_version
from catalog.sign import sign_version
from catalog.signing.verify import Verified, verify_version
from tests.helpers import declare_store
from tests.onnx_models import dense_model, save, save_with_external_data
from tests.signing.conftest import Signable

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("external", [False, True])
def test_a_version_in_a_registry_is_signed_there_and_verifies(
    signable: Signable, registry: tuple[str, Path], tmp_path: Path, external: bool
) -> None:
    host = registry[0].removeprefix("http://")
    reference = f"oci://{host}/models/signed-{int(external)}"
    declare_store(signable.catalog_path, "registry", reference)
    model = dense_model(seed=50 + external)
    source = save_with_external_data(model, tmp_path / "src") if external else save(model, tmp_path / "m.onnx")
    register_version(signable.catalog_path, "fraud-scorer", "1.5.0", source, store="registry")
    record = sign_version(signable.catalog_path, "fraud-scorer", "1.5.0", str(signable.key("release")))
    assert record.uri.startswith(reference + "@sha256:")
    verified = verify_version(signable.catalog(), signable.root, "fraud-scorer", "1.5.0", "production")
    assert verified == Verified("release", 1, record.digest)
