"""catalog.vault against the fake Vault: the adapter's contract (tests/vault/adapter_contract.py)."""

from __future__ import annotations

import pytest

from tests.vault.adapter_contract import AdapterContract
from tests.vault.fake_backend import FakeBackend
from tests.vault_server import FakeVault


class TestAgainstTheFakeVault(AdapterContract):
    @pytest.fixture
    def backend(self, vault: FakeVault) -> FakeBackend:
        return FakeBackend(vault)
