"""A Vault Transit key in the trust policy: every version from min_version up counts, older ones are
revoked; Vault is asked only when a signature is judged. Against the fake Vault (tests/vault_server.py)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from catalog.errors import SignatureMissing, SigningError, UntrustedSigner, VaultForbidden
from catalog.signing.trust import trusted_keys
from catalog.signing.verify import Verified, verify_version
from catalog.vault import Vault
from tests.signing.conftest import URI_140, Signable
from tests.vault_server import FakeVault

TRANSIT = "    - {name: transit-release, vault: vault://transit/keys/release, min_version: 2}\n"


@pytest.fixture
def rotated(vault: FakeVault, signable: Signable) -> Signable:
    """The release key in Vault at versions 1, 2 and 3; production trusts it from version 2."""
    vault.create_key("release")
    vault.rotate("release")
    vault.rotate("release")
    text = signable.catalog_path.read_text()
    text = text.replace("  environments:\n", TRANSIT + "  environments:\n", 1)
    signable.catalog_path.write_text(text.replace("keys: [release]}", "keys: [release, transit-release]}"))
    return signable


def with_vault_version(vault: FakeVault, signable: Signable, version: int) -> None:
    """Write the private key of Vault's release v``version`` as keys/vault-v``version``.pem (the fake
    Vault holds it; a real one never lets it out), to make bundles that key version would make."""
    private = vault.keys[("transit", "release")].private(version)
    encoding = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    (signable.root / "keys" / f"vault-v{version}.pem").write_bytes(private.private_bytes(*encoding))


def client(vault: FakeVault) -> Vault:
    return Vault(vault.addr, vault.token)


def test_each_version_from_min_version_counts_and_older_ones_are_revoked(vault: FakeVault, rotated: Signable) -> None:
    trusted = trusted_keys(rotated.catalog(), "production", rotated.root, client(vault))
    assert [(k.name, k.version) for k in trusted.keys] == [
        ("release", 1),
        ("transit-release", 2),
        ("transit-release", 3),
    ]
    assert [(k.name, k.version) for k in trusted.revoked] == [("transit-release", 1)]
    assert trusted.keys[2].pem == vault.public_key_pem("release", 3)


def test_vault_comes_from_the_environment_when_none_is_given(
    vault: FakeVault, rotated: Signable, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in vault.env().items():
        monkeypatch.setenv(name, value)
    assert len(trusted_keys(rotated.catalog(), "production", rotated.root).keys) == 3


def test_a_signature_by_a_current_vault_version_verifies_and_a_revoked_one_does_not(
    vault: FakeVault, rotated: Signable
) -> None:
    with_vault_version(vault, rotated, 3)
    uri = rotated.record(URI_140, URI_140, key="vault-v3", recorded_key="transit-release", key_version=3)
    verified = verify_version(rotated.catalog(), rotated.root, "fraud-scorer", "1.4.0", "production", client(vault))
    assert verified == Verified("transit-release", 3, "sha256:" + uri.rsplit("/", 1)[1])

    text = rotated.catalog_path.read_text()  # the record taken out again, for the next one
    start = text.index("          bundle:\n")
    rotated.catalog_path.write_text(text[:start] + text[start:].split("signed_at: ", 1)[1].split("\n", 1)[1])
    with_vault_version(vault, rotated, 1)
    rotated.record(URI_140, URI_140, key="vault-v1", recorded_key="transit-release", key_version=2)
    with pytest.raises(UntrustedSigner, match=r"signed by transit-release v1, a revoked version \(min_version 2\)"):
        verify_version(rotated.catalog(), rotated.root, "fraud-scorer", "1.4.0", "production", client(vault))


def test_an_unsigned_version_does_not_ask_vault(vault: FakeVault, rotated: Signable) -> None:
    refused = Vault(vault.addr, "hvs.not-a-token")
    assert verify_version(rotated.catalog(), rotated.root, "fraud-scorer", "1.4.0", "dev", refused) is None
    with pytest.raises(SignatureMissing, match="environment production requires signed versions"):
        verify_version(rotated.catalog(), rotated.root, "fraud-scorer", "1.4.0", "production", refused)
    rotated.record(URI_140, URI_140)
    with pytest.raises(VaultForbidden):
        verify_version(rotated.catalog(), rotated.root, "fraud-scorer", "1.4.0", "production", refused)


def test_a_malformed_vault_key_reference_is_named(rotated: Signable) -> None:
    from catalog.signing.keys import open_key

    with pytest.raises(SigningError, match="vault://transit/release: .*vault://MOUNT/keys/NAME"):
        open_key("vault://transit/release", rotated.root)
