"""The adapter's contract (tests/vault/adapter_contract.py) against a real Vault, opt-in.

Runs when VAULT_ADDR and VAULT_TOKEN are set (skipped otherwise), e.g. against a dev server:
``vault server -dev`` then ``vault secrets enable transit``, with VAULT_ADDR and VAULT_TOKEN exported
(KV v2 is at ``secret/`` on a dev server). The token needs to create, rotate and read Transit keys
and write and read KV v2 secrets. MODELCAT_TEST_VAULT_TRANSIT and MODELCAT_TEST_VAULT_KV name other
mounts. Keys and secrets are named ``modelcat-test-...`` and removed afterwards where the token may.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import hvac
import hvac.exceptions
import pytest

from catalog.vault import Vault
from tests.vault.adapter_contract import AdapterContract

pytestmark = pytest.mark.skipif(
    not (os.environ.get("VAULT_ADDR") and os.environ.get("VAULT_TOKEN")),
    reason="VAULT_ADDR and VAULT_TOKEN are not set: set them to run the Vault adapter's tests against a real Vault",
)


class RealBackend:
    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.token = self.env["VAULT_TOKEN"]
        self.transit_mount = self.env.get("MODELCAT_TEST_VAULT_TRANSIT", "transit")
        self.kv_mount = self.env.get("MODELCAT_TEST_VAULT_KV", "secret")
        self.client = hvac.Client(
            url=self.env["VAULT_ADDR"],
            token=self.token,
            namespace=self.env.get("VAULT_NAMESPACE"),
            verify=self.env.get("VAULT_CACERT") or True,
        )
        self.keys: list[str] = []
        self.secrets: list[str] = []

    def adapter(self, token: str | None = None, **options: Any) -> Vault:
        return Vault.from_env(self.env | {"VAULT_TOKEN": token or self.token}, **options)

    def unique(self, stem: str) -> str:
        return f"modelcat-test-{stem.replace('/', '-')}-{uuid.uuid4().hex[:12]}"

    def new_key(self, key_type: str) -> str:
        name = self.unique("key")
        self.client.secrets.transit.create_key(name, key_type=key_type, mount_point=self.transit_mount)
        self.keys.append(name)
        return name

    def rotate(self, name: str) -> None:
        self.client.secrets.transit.rotate_key(name, mount_point=self.transit_mount)

    def write_secret(self, path: str, data: dict[str, Any]) -> int:
        written = self.client.secrets.kv.v2.create_or_update_secret(path, secret=data, mount_point=self.kv_mount)
        self.secrets.append(path)
        return int(written["data"]["version"])

    def clean_up(self) -> None:
        """Best effort: a token that may not delete leaves the uniquely named test keys behind."""
        transit, kv = self.client.secrets.transit, self.client.secrets.kv.v2
        for name in self.keys:
            try:
                transit.update_key_configuration(name, deletion_allowed=True, mount_point=self.transit_mount)
                transit.delete_key(name, mount_point=self.transit_mount)
            except hvac.exceptions.VaultError:
                pass
        for path in self.secrets:
            try:
                kv.delete_metadata_and_all_versions(path, mount_point=self.kv_mount)
            except hvac.exceptions.VaultError:
                pass


class TestAgainstARealVault(AdapterContract):
    @pytest.fixture
    def backend(self) -> Iterator[RealBackend]:
        backend = RealBackend()
        yield backend
        backend.clean_up()
