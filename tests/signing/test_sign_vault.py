"""modelcat sign with a Vault Transit key: the key version Vault signed with is recorded, and verifies."""

from __future__ import annotations

import pytest

from catalog.errors import SigningError
from catalog.signing.sign import sign_version
from catalog.signing.verify import Verified, verify_version
from catalog.vault import Vault
from tests.signing.conftest import Signable
from tests.vault_server import FakeVault

TRANSIT = "    - {name: transit-release, vault: vault://transit/keys/release, min_version: 2}\n"


def test_a_vault_key_signs_with_its_latest_version_and_it_is_recorded(vault: FakeVault, signable: Signable) -> None:
    vault.create_key("release", type="ecdsa-p384")
    text = signable.catalog_path.read_text().replace("  environments:\n", TRANSIT + "  environments:\n", 1)
    signable.catalog_path.write_text(text.replace("keys: [release]}", "keys: [release, transit-release]}"))
    client = Vault(vault.addr, vault.token)
    ref = "vault://transit/keys/release"
    with pytest.raises(SigningError, match="below trust key transit-release's min_version 2"):
        sign_version(signable.catalog_path, "fraud-scorer", "1.4.0", ref, vault=client)
    assert "bundle:" not in signable.catalog_path.read_text()
    vault.rotate("release")
    record = sign_version(signable.catalog_path, "fraud-scorer", "1.4.0", ref, vault=client)
    assert (record.key, record.key_version) == ("transit-release", 2)
    verified = verify_version(signable.catalog(), signable.root, "fraud-scorer", "1.4.0", "production", client)
    assert verified == Verified("transit-release", 2, record.digest)
