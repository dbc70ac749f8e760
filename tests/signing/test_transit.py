"""Release keys in Vault Transit (catalog.signing.transit) against the fake Vault: bundles they sign
verify with the stock ``model_signing verify key`` command, and carry the key version that signed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from catalog.errors import SigningError, VaultNotFound, VaultSealed
from catalog.signing.bundle import sign_artifact, verify_artifact
from catalog.signing.keys import key_hint, open_key
from catalog.signing.transit import TransitKey
from catalog.signing.trust import PublicKey
from catalog.vault import Vault
from tests.signing.stock_cli import stock_verify
from tests.vault_server import FakeVault


@pytest.fixture
def artifact(workspace: Path) -> Path:
    """An ONNX file of the demo catalog, where its URI puts it in the in-repo store."""
    return min((workspace / "artifacts" / "sha256").glob("*/*"))


def client(vault: FakeVault) -> Vault:
    """A client of the fake that waits 30 s for an answer (on a loaded machine, no false timeout)."""
    return Vault(vault.addr, vault.token, timeout=30)


def verify_with(artifact: Path, bundle: bytes, pem: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The stock CLI's verdict on ``bundle`` for ``artifact`` with the public key ``pem``."""
    (tmp_path / "bundle.sig").write_bytes(bundle)
    (tmp_path / "key.pub.pem").write_bytes(pem)
    return stock_verify(artifact, tmp_path / "bundle.sig", tmp_path / "key.pub.pem")


@pytest.mark.slow  # the stock CLI: a process
@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384"])
def test_a_bundle_signed_in_vault_transit_verifies_with_the_stock_model_signing_cli(
    vault: FakeVault, artifact: Path, tmp_path: Path, key_type: str
) -> None:
    vault.create_key("release", key_type)
    vault.create_key("other", key_type)
    key = TransitKey(client(vault), "transit", "release")
    bundle = sign_artifact(artifact, key)
    assert key.version == 1 and key.public_key_pem() == vault.public_key_pem("release", 1)
    verified = verify_with(artifact, bundle, vault.public_key_pem("release", 1), tmp_path)
    assert verified.returncode == 0 and "Verification succeeded" in verified.stdout, verified.stdout + verified.stderr
    refused = verify_with(artifact, bundle, vault.public_key_pem("other", 1), tmp_path)
    assert refused.returncode != 0
    pem = vault.public_key_pem("release", 1)
    trusted = PublicKey("vault-release", 1, pem, key_hint(pem))
    assert verify_artifact(artifact, bundle, [trusted]) == trusted


@pytest.mark.slow  # the stock CLI: a process
def test_after_rotate_signatures_carry_the_new_version(vault: FakeVault, artifact: Path, tmp_path: Path) -> None:
    vault.create_key("release")
    vault_client = client(vault)
    assert TransitKey(vault_client, "transit", "release").version == 1
    vault.rotate("release")
    key = TransitKey(vault_client, "transit", "release")
    bundle = sign_artifact(artifact, key)
    assert key.version == 2 and key.public_key_pem() == vault.public_key_pem("release", 2)
    assert verify_with(artifact, bundle, vault.public_key_pem("release", 2), tmp_path).returncode == 0
    assert verify_with(artifact, bundle, vault.public_key_pem("release", 1), tmp_path).returncode != 0


def test_a_rotation_between_reading_the_key_and_signing_names_the_version_that_signed(
    vault: FakeVault, artifact: Path
) -> None:
    vault.create_key("release")
    key = TransitKey(client(vault), "transit", "release")
    assert key.version == 1  # the key is read: version 1 is the latest
    vault.rotate("release")
    sign_artifact(artifact, key)  # checks the signature against public_key_pem() before it returns
    assert key.version == 2 and key.public_key_pem() == vault.public_key_pem("release", 2)


def test_open_key_gives_a_transit_key_for_a_vault_ref(vault: FakeVault, artifact: Path, tmp_path: Path) -> None:
    vault.create_key("release", "ecdsa-p384")
    key = open_key("vault://transit/keys/release", tmp_path, client(vault))
    assert isinstance(key, TransitKey) and repr(key) == "TransitKey(vault://transit/keys/release)"
    pem = vault.public_key_pem("release", 1)
    trusted = PublicKey("vault-release", 1, pem, key_hint(pem))
    assert verify_artifact(artifact, sign_artifact(artifact, key), [trusted]) == trusted


def test_a_transit_key_of_a_type_that_cannot_sign_releases_is_refused(vault: FakeVault, artifact: Path) -> None:
    vault.create_key("secretive", "aes256-gcm96")
    key = TransitKey(client(vault), "transit", "secretive")
    with pytest.raises(
        SigningError, match="a Transit key of type aes256-gcm96; release keys are ecdsa-p256 or ecdsa-p384"
    ):
        sign_artifact(artifact, key)
    assert vault.count("transit/sign/") == 0


def test_a_transit_key_that_does_not_exist_is_not_found(vault: FakeVault, artifact: Path) -> None:
    key = TransitKey(client(vault), "transit", "nobody")
    with pytest.raises(VaultNotFound, match="transit/keys/nobody: not found"):
        sign_artifact(artifact, key)


def test_a_vault_sealed_while_signing_fails_closed(vault: FakeVault, artifact: Path) -> None:
    vault.create_key("release")
    key = TransitKey(client(vault), "transit", "release")
    assert key.version == 1
    vault.seal()
    with pytest.raises(VaultSealed):
        sign_artifact(artifact, key)
