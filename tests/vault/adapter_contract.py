"""What catalog.vault.Vault does against any Vault: the fake one (tests/vault/test_vault_adapter.py) and,
when VAULT_ADDR and VAULT_TOKEN are set, a real one (tests/test_vault_real.py).

A subclass provides the fixture ``backend``: a ``Backend`` on the server under test.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.errors import ModelcatError, VaultForbidden, VaultNotFound
from catalog.vault import Vault

MESSAGE = b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
HASHES = {"ecdsa-p256": ("sha2-256", hashes.SHA256()), "ecdsa-p384": ("sha2-384", hashes.SHA384())}


class Backend(Protocol):
    token: str
    transit_mount: str
    kv_mount: str

    def adapter(self, token: str | None = None, **options: Any) -> Vault: ...
    def new_key(self, key_type: str) -> str: ...
    def rotate(self, name: str) -> None: ...
    def write_secret(self, path: str, data: dict[str, Any]) -> int: ...
    def unique(self, stem: str) -> str: ...


def verifies(pem: bytes, der: bytes, message: bytes, algorithm: hashes.HashAlgorithm) -> bool:
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    try:
        public.verify(der, message, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def everything_said(
    failing: Callable[[], object], caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> str:
    """All a failing call leaves anywhere: the error's message, hint and fields, its whole chain as a
    traceback prints it, every log record down to DEBUG, and what reached stdout and stderr."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ModelcatError) as caught:
        failing()
    error = caught.value
    said = [str(error), error.hint, repr(error.fields), "".join(traceback.format_exception(error))]
    said += [record.getMessage() for record in caplog.records]
    out, err = capfd.readouterr()
    return "\n".join([*said, out, err])


class AdapterContract:
    """The adapter's behaviour that any Vault must show; ``backend`` comes from the subclass."""

    @pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384"])
    def test_transit_sign_returns_the_key_version_and_a_der_signature_its_public_key_verifies(
        self, backend: Backend, key_type: str
    ) -> None:
        name = backend.new_key(key_type)
        vault = backend.adapter()
        hash_name, algorithm = HASHES[key_type]
        info = vault.transit_public_keys(backend.transit_mount, name)
        assert (info.type, info.latest_version, sorted(info.public_keys)) == (key_type, 1, [1])
        version, der = vault.transit_sign(backend.transit_mount, name, MESSAGE, hash_name)  # type: ignore[arg-type]
        assert version == 1
        assert verifies(info.public_keys[1], der, MESSAGE, algorithm)
        assert not verifies(info.public_keys[1], der, MESSAGE + b" ", algorithm)

    def test_after_rotation_signatures_carry_the_new_version(self, backend: Backend) -> None:
        name = backend.new_key("ecdsa-p256")
        vault = backend.adapter()
        backend.rotate(name)
        info = vault.transit_public_keys(backend.transit_mount, name)
        assert info.latest_version == 2 and sorted(info.public_keys) == [1, 2]
        version, der = vault.transit_sign(backend.transit_mount, name, MESSAGE, "sha2-256")
        assert version == 2
        assert verifies(info.public_keys[2], der, MESSAGE, hashes.SHA256())
        assert not verifies(info.public_keys[1], der, MESSAGE, hashes.SHA256())

    def test_a_key_that_cannot_sign_shows_no_public_key(self, backend: Backend) -> None:
        name = backend.new_key("aes256-gcm96")
        info = backend.adapter().transit_public_keys(backend.transit_mount, name)
        assert info.type == "aes256-gcm96" and info.public_keys == {}

    def test_kv_read_gives_the_latest_or_the_pinned_version(self, backend: Backend) -> None:
        path = backend.unique("modelcat-test/token")
        backend.write_secret(path, {"token": "one"})
        backend.write_secret(path, {"token": "two"})
        vault = backend.adapter()
        latest = vault.kv_read(backend.kv_mount, path)
        assert (latest.data, latest.version) == ({"token": "two"}, 2)
        pinned = vault.kv_read(backend.kv_mount, path, version=1)
        assert (pinned.data, pinned.version) == ({"token": "one"}, 1)

    def test_a_transit_key_that_does_not_exist_is_vault_not_found(self, backend: Backend) -> None:
        vault, name = backend.adapter(), backend.unique("no-such-key")
        with pytest.raises(VaultNotFound, match=f"{backend.transit_mount}/keys/{name}: not found"):
            vault.transit_public_keys(backend.transit_mount, name)
        with pytest.raises(VaultNotFound, match=f"{backend.transit_mount}/sign/{name}: not found"):
            vault.transit_sign(backend.transit_mount, name, MESSAGE, "sha2-256")

    def test_a_secret_or_version_that_does_not_exist_is_vault_not_found(self, backend: Backend) -> None:
        vault = backend.adapter()
        path = backend.unique("modelcat-test/absent")
        with pytest.raises(VaultNotFound, match=f"{backend.kv_mount}/data/{path}: not found"):
            vault.kv_read(backend.kv_mount, path)
        backend.write_secret(path, {"a": "b"})
        with pytest.raises(VaultNotFound, match=rf"{backend.kv_mount}/data/{path}\?version=7: not found"):
            vault.kv_read(backend.kv_mount, path, version=7)

    def test_a_bad_token_is_vault_forbidden_naming_the_path(self, backend: Backend) -> None:
        name = backend.new_key("ecdsa-p256")
        vault = backend.adapter(token="hvs.not-a-valid-token-at-all")
        with pytest.raises(VaultForbidden, match=f"{backend.transit_mount}/keys/{name}: permission denied") as caught:
            vault.transit_public_keys(backend.transit_mount, name)
        assert caught.value.exit_code == 2

    def test_the_token_is_never_in_a_failing_calls_output_nor_in_a_file(
        self,
        backend: Backend,
        caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))  # where a client might keep a token (~/.vault-token)
        monkeypatch.chdir(tmp_path)
        absent = backend.unique("absent")
        vault = backend.adapter()
        said = everything_said(
            lambda: vault.transit_sign(backend.transit_mount, absent, MESSAGE, "sha2-256"), caplog, capfd
        )
        said += everything_said(lambda: vault.kv_read(backend.kv_mount, absent), caplog, capfd)
        bad = "hvs.this-token-is-refused-0123456789"
        said += everything_said(lambda: backend.adapter(token=bad).kv_read(backend.kv_mount, absent), caplog, capfd)
        assert "not found" in said and "permission denied" in said  # the failures did say something
        assert backend.token not in said and bad not in said
        assert backend.token not in repr(vault) and backend.token not in str(vars(vault))
        written = [p for p in tmp_path.rglob("*") if p.is_file() and backend.token.encode() in p.read_bytes()]
        assert not written
