"""An endpoint's secrets, from Vault KV v2 to its replicas: read when replicas start, handed over as files.

The endpoint's ``secret`` blocks name each secret by path (``vault://MOUNT/PATH``), with a field
and a pinned version when the catalog gives them. When replicas start, the provider reads every
secret once (``read_secrets``, through ``catalog.vault``, the one Vault client) and writes each
replica's copy into a folder of its own under the run directory (``secrets/``, mode 0700), one
file per secret (mode 0400), which the replica finds at ``$MODELCAT_SECRETS_DIR``. The run record
and Terraform's state keep the path and the version read, never a value; a message names the path,
never the token (``catalog.errors.VaultError``).

A secret without a pinned version is read at its latest version: ``wanted_versions`` is what the
next start would read, which the endpoint's plan compares with the versions its replicas hold (a
new KV version is an update: the replicas restart one at a time).
"""

from __future__ import annotations

import json
import os
import secrets as tokens
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.domain.bodies import SECRETS_DIR_ENV
from catalog.domain.vault_refs import parse_kv_ref
from catalog.errors import VaultError, VaultNotFound

if TYPE_CHECKING:
    from catalog.vault import Vault

__all__ = [
    "SECRETS_DIR_ENV",
    "DeliveredSecret",
    "SecretSpec",
    "SecretValues",
    "read_secrets",
    "remove_secrets_folder",
    "secret_specs",
    "wanted_versions",
    "write_secrets_folder",
]

FOLDER_MODE = 0o700
FILE_MODE = 0o400


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """A ``secret`` block of an endpoint: which file, from which KV v2 secret, field and version."""

    name: str
    vault: str
    field: str | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class DeliveredSecret:
    """What is written down of a secret handed to replicas: its path and the version read."""

    name: str
    vault: str
    version: int
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"vault": self.vault, "version": self.version}
        return body | ({"field": self.field} if self.field else {})


@dataclass(frozen=True)
class SecretValues:
    """Secrets read from Vault: what may be recorded (``delivered``) and the values (``files``),
    kept in memory only until each replica's folder is written."""

    delivered: tuple[DeliveredSecret, ...]
    files: Mapping[str, bytes]

    def __repr__(self) -> str:  # never the values
        return f"SecretValues({[s.name for s in self.delivered]})"

    @property
    def versions(self) -> dict[str, int]:
        return {s.name: s.version for s in self.delivered}


def secret_specs(blocks: Sequence[Mapping[str, Any]] | None) -> list[SecretSpec]:
    """The ``secret`` blocks of an endpoint's configuration or state."""
    specs = []
    for block in blocks or ():
        version = block.get("version")
        specs.append(
            SecretSpec(
                name=str(block["name"]),
                vault=str(block["vault"]),
                field=block.get("field") or None,
                version=int(version) if isinstance(version, int | float) and not isinstance(version, bool) else None,
            )
        )
    return specs


def _value(spec: SecretSpec, data: Mapping[str, Any], version: int, address: str) -> bytes:
    """The file's bytes: the field's value (a string as it is, anything else as JSON), or the whole data as JSON."""
    if spec.field is None:
        return json.dumps(data, sort_keys=True).encode()
    if spec.field not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise VaultNotFound(address, f"{spec.vault} version {version} has no field {spec.field!r} (its fields: {keys})")
    value = data[spec.field]
    return value.encode() if isinstance(value, str) else json.dumps(value, sort_keys=True).encode()


def read_secrets(specs: Sequence[SecretSpec], vault: Vault) -> SecretValues:
    """Read every secret (each at its pinned version, else its latest); VaultError names the path."""
    delivered, files = [], {}
    for spec in specs:
        ref = parse_kv_ref(spec.vault)
        try:
            found = vault.kv_read(ref.mount, ref.path, spec.version)
        except VaultError as e:  # named as the catalog writes it (the adapter names the API path)
            at = f" version {spec.version}" if spec.version else ""
            raise type(e)(e.address, f"secret {spec.name!r} ({spec.vault}{at}): {e.detail}") from e
        files[spec.name] = _value(spec, found.data, found.version, vault.address)
        delivered.append(DeliveredSecret(spec.name, spec.vault, found.version, spec.field))
    return SecretValues(tuple(delivered), files)


def wanted_versions(specs: Sequence[SecretSpec], vault: Vault) -> dict[str, int]:
    """The version each secret would be read at now: its pinned one, else Vault's latest."""
    return read_secrets([s for s in specs if s.version is None], vault).versions | {
        s.name: s.version for s in specs if s.version is not None
    }


def write_secrets_folder(root: Path, stem: str, values: SecretValues) -> Path:
    """A new private folder ``root/<stem>-<random>`` (0700) holding one file per secret (0400)."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, FOLDER_MODE)
    folder = root / f"{stem}-{tokens.token_hex(4)}"
    folder.mkdir(mode=FOLDER_MODE)
    os.chmod(folder, FOLDER_MODE)  # whatever the umask
    try:
        for name, data in values.files.items():
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
    except BaseException:
        remove_secrets_folder(folder)
        raise
    return folder


def remove_secrets_folder(folder: str | Path) -> None:
    """Remove a replica's secrets folder (its files are read-only to their owner: the folder is not)."""
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
