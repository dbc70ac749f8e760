"""catalog.provider.secrets without Terraform: what is read from Vault, the files a replica gets,
and what may be written down (path and version, never a value)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from catalog.errors import VaultNotFound
from catalog.provider.secrets import (
    SecretSpec,
    read_secrets,
    remove_secrets_folder,
    secret_specs,
    wanted_versions,
    write_secrets_folder,
)


class StubVault:
    """Just what read_secrets calls: KV v2 reads by mount, path and version."""

    address = "http://127.0.0.1:8200"

    def __init__(self, secrets: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        self.secrets = secrets

    def kv_read(self, mount: str, path: str, version: int | None) -> Any:
        versions = self.secrets[(mount, path)]
        number = version or len(versions)

        class Found:
            data = versions[number - 1]

        Found.version = number  # type: ignore[attr-defined]
        return Found


VAULT = StubVault({("secret", "a/token"): [{"token": "one"}, {"token": "two", "n": 2}], ("kv", "b"): [{"k": [1]}]})


def test_a_field_is_its_value_and_no_field_the_whole_data_as_json() -> None:
    specs = [
        SecretSpec("t", "vault://secret/a/token", "token"),
        SecretSpec("b", "vault://kv/b"),
        SecretSpec("n", "vault://secret/a/token", "n"),
    ]
    values = read_secrets(specs, VAULT)  # type: ignore[arg-type]
    assert dict(values.files) == {"t": b"two", "b": b'{"k": [1]}', "n": b"2"}
    assert values.versions == {"t": 2, "b": 1, "n": 2}
    assert [s.as_dict() for s in values.delivered] == [
        {"vault": "vault://secret/a/token", "version": 2, "field": "token"},
        {"vault": "vault://kv/b", "version": 1},
        {"vault": "vault://secret/a/token", "version": 2, "field": "n"},
    ]
    assert "two" not in repr(values)


def test_a_pinned_version_is_read_and_wanted_as_pinned() -> None:
    specs = [SecretSpec("t", "vault://secret/a/token", "token", version=1), SecretSpec("b", "vault://kv/b")]
    assert read_secrets(specs, VAULT).files["t"] == b"one"  # type: ignore[arg-type]
    assert wanted_versions(specs, VAULT) == {"t": 1, "b": 1}  # type: ignore[arg-type]


def test_a_missing_field_is_not_found_naming_the_path_and_the_fields_there() -> None:
    with pytest.raises(
        VaultNotFound, match=r"vault://secret/a/token version 2 has no field 'password' \(its fields: n, token\)"
    ):
        read_secrets([SecretSpec("p", "vault://secret/a/token", "password")], VAULT)  # type: ignore[arg-type]


def test_each_replica_gets_a_private_folder_of_read_only_files(tmp_path: Path) -> None:
    values = read_secrets([SecretSpec("t", "vault://secret/a/token", "token")], VAULT)  # type: ignore[arg-type]
    first = write_secrets_folder(tmp_path / "secrets", "checkout.fraud-scorer.1.3.0", values)
    second = write_secrets_folder(tmp_path / "secrets", "checkout.fraud-scorer.1.3.0", values)
    assert first != second and first.parent == second.parent == tmp_path / "secrets"
    for folder in (first, second, first.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((first / "t").stat().st_mode) == 0o400
    assert (first / "t").read_bytes() == b"two"
    remove_secrets_folder(first)
    assert not first.exists() and second.exists()


def test_secret_blocks_are_read_from_a_configuration_or_a_state() -> None:
    blocks = [
        {"name": "t", "vault": "vault://secret/a/token", "field": None, "version": 3.0},
        {"name": "b", "vault": "vault://kv/b"},
    ]
    assert secret_specs(blocks) == [SecretSpec("t", "vault://secret/a/token", None, 3), SecretSpec("b", "vault://kv/b")]
    assert secret_specs(None) == []
