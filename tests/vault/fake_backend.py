"""The contract's ``Backend`` on the fake Vault (tests/vault_server.py)."""

from __future__ import annotations

import itertools
from typing import Any

from catalog.vault import Vault
from tests.vault_server import FakeVault


class FakeBackend:
    transit_mount = "transit"
    kv_mount = "secret"

    def __init__(self, server: FakeVault) -> None:
        self.server = server
        self.token = server.token
        self._names = itertools.count(1)
        self.sleeps: list[float] = []

    def adapter(self, token: str | None = None, **options: Any) -> Vault:
        """A client of the fake whose backoff sleeps are recorded, not slept, and whose requests wait
        30 s for an answer unless told otherwise (a loaded machine's answer is no timeout)."""
        options = {"timeout": 30.0} | options
        return Vault(self.server.addr, token or self.token, sleep=self.sleeps.append, **options)

    def unique(self, stem: str) -> str:
        return f"{stem}-{next(self._names)}"

    def new_key(self, key_type: str) -> str:
        name = self.unique("release")
        self.server.create_key(name, key_type, mount=self.transit_mount)
        return name

    def rotate(self, name: str) -> None:
        self.server.rotate(name, mount=self.transit_mount)

    def write_secret(self, path: str, data: dict[str, Any]) -> int:
        return self.server.write_secret(path, data, mount=self.kv_mount)
