"""Fixtures for the signing tests: the demo workspace with release keys and a trust policy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog.artifacts.stores.local import LocalStore
from catalog.domain.models import Catalog
from catalog.signing.bundle import sign_artifact
from catalog.signing.keys import PemKey
from catalog.validate import load_catalog
from tests.artifacts.conftest import registry  # noqa: F401  (the artifact tests' registry, for an OCI store)
from tests.signing.keyfiles import record_bundle, with_trust, write_key

TRUST_KEYS = """\
    - {name: release, public_key: keys/release.pub.pem}
    - {name: ci, public_key: keys/ci.pub.pem}
"""
TRUST_ENVIRONMENTS = """\
    - {environment: production, keys: [release]}
    - {environment: staging, require_signatures: false, keys: [ci]}
"""
URI_130 = "artifacts/sha256/fb/fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0"
URI_140 = "artifacts/sha256/34/344eb462ff67b4412ea59c01ab3b175619c097825114981a233597eaa0c8575b"


@dataclass
class Signable:
    """A catalog folder (``root``) with keys in ``keys/`` (release, ci, intruder) and a trust policy."""

    root: Path

    @property
    def catalog_path(self) -> Path:
        return self.root / "models.yaml"

    def catalog(self) -> Catalog:
        return load_catalog(self.catalog_path)

    def key(self, name: str) -> Path:
        return self.root / "keys" / f"{name}.pem"

    def record(
        self,
        artifact_uri: str,
        signed_uri: str,
        key: str = "release",
        recorded_key: str | None = None,
        key_version: int = 1,
    ) -> str:
        """Sign the artifact at ``signed_uri`` with ``key``, store the bundle and record it on the version
        whose artifact is ``artifact_uri`` (as signed by ``recorded_key``, default ``key``); its URI."""
        bundle = sign_artifact(self.root / signed_uri, PemKey(self.key(key)))
        store = LocalStore(Path("artifacts"), self.root)
        uri = store.put_blob(bundle)
        digest = "sha256:" + uri.rsplit("/", 1)[1]
        text = self.catalog_path.read_text()
        self.catalog_path.write_text(record_bundle(text, artifact_uri, uri, digest, recorded_key or key, key_version))
        return uri  # fmt: skip


@pytest.fixture
def signable(workspace: Path) -> Signable:
    for name in ("release", "ci", "intruder"):
        write_key(workspace / "keys", name)
    path = workspace / "models.yaml"
    path.write_text(with_trust(path.read_text(), TRUST_KEYS, TRUST_ENVIRONMENTS))
    return Signable(workspace)
