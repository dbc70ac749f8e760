"""`modelcat sign --key vault://transit/keys/NAME` end to end against the fake Vault: the bundle it
stores verifies with the stock CLI and records the key version Vault signed with; when Vault fails,
the command fails closed with the reason, writes nothing, and never shows the token."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from catalog.errors import SigningError
from catalog.sign import sign_version
from catalog.signing.verify import Verified, verify_version
from catalog.vault import Vault
from tests.signing.conftest import URI_140, Signable
from tests.signing.stock_cli import stock_verify
from tests.vault_server import FakeVault

VAULT_KEY = "    - {name: vault-release, vault: vault://transit/keys/release}\n"
SIGN = ("sign", "fraud-scorer", "--version", "1.4.0", "--key", "vault://transit/keys/release")


@pytest.fixture
def vault_signable(vault: FakeVault, signable: Signable, monkeypatch: pytest.MonkeyPatch) -> Signable:
    """The signing workspace, its trust policy with the Vault key release (production trusts it),
    the fake Vault in the environment, one attempt per request (of 30 s at most: a loaded machine's
    answer is never mistaken for a timeout); the cwd is the catalog's folder."""
    text = signable.catalog_path.read_text().replace("  environments:\n", VAULT_KEY + "  environments:\n", 1)
    signable.catalog_path.write_text(text.replace("keys: [release]}", "keys: [release, vault-release]}"))
    vault.create_key("release")
    for name, value in (vault.env() | {"MODELCAT_VAULT_ATTEMPTS": "1", "MODELCAT_VAULT_TIMEOUT": "30"}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(signable.root)
    return signable


@pytest.mark.slow  # the stock CLI: a process per check
def test_modelcat_sign_with_a_vault_key_stores_a_bundle_the_stock_cli_verifies(
    cli: Callable[..., Result], vault: FakeVault, vault_signable: Signable
) -> None:
    root = vault_signable.root
    (root / "v1.pub.pem").write_bytes(vault.public_key_pem("release", 1))
    first = cli(*SIGN, "--format", "json")
    assert first.exit_code == 0, first.output
    bundle = json.loads(first.output)["bundle"]
    assert (bundle["key"], bundle["key_version"]) == ("vault-release", 1)
    verified = stock_verify(root / URI_140, root / bundle["uri"], root / "v1.pub.pem")
    assert verified.returncode == 0 and "Verification succeeded" in verified.stdout, verified.stdout + verified.stderr

    vault.rotate("release")
    (root / "v2.pub.pem").write_bytes(vault.public_key_pem("release", 2))
    second = cli(*SIGN)
    assert second.exit_code == 0 and "with vault-release v2" in second.output, second.output
    uri = vault_signable.catalog_path.read_text().split("            uri: ", 1)[1].split("\n", 1)[0]
    assert "key_version: 2" in vault_signable.catalog_path.read_text()
    assert stock_verify(root / URI_140, root / uri, root / "v2.pub.pem").returncode == 0
    assert stock_verify(root / URI_140, root / uri, root / "v1.pub.pem").returncode != 0


@pytest.mark.parametrize(
    ("fault", "code", "says"),
    [
        ("bad token", 2, "transit/keys/release: permission denied"),
        ("expired token", 2, "transit/keys/release: permission denied"),
        ("sealed", 2, "transit/keys/release: Vault is sealed"),
        ("down", 2, "transit/keys/release: cannot connect, 1 attempts"),
        ("hanging", 2, "transit/keys/release: no answer within 0.3 s, 1 attempts"),
        ("no such key", 1, "transit/keys/release: not found"),
    ],
)
def test_modelcat_sign_fails_closed_when_vault_fails_and_never_shows_the_token(
    cli: Callable[..., Result],
    vault: FakeVault,
    vault_signable: Signable,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    code: int,
    says: str,
) -> None:
    token = vault.token
    if fault == "bad token":
        token = "hvs.a-token-vault-never-issued-0123456789"
        monkeypatch.setenv("VAULT_TOKEN", token)
    elif fault == "expired token":
        token = vault.create_token(ttl=60)
        monkeypatch.setenv("VAULT_TOKEN", token)
        vault.advance(61)
    elif fault == "sealed":
        vault.seal()
    elif fault == "down":
        vault.down()
    elif fault == "hanging":  # never answers: the timeout fires whatever the load
        vault.hang()
        monkeypatch.setenv("MODELCAT_VAULT_TIMEOUT", "0.3")
    else:
        del vault.keys[("transit", "release")]
    before = vault_signable.catalog_path.read_text()
    stored = sorted(p for p in (vault_signable.root / "artifacts").rglob("*"))
    for fmt in ("json", "text"):
        result = cli(*SIGN, "--format", fmt)
        assert result.exit_code == code, result.output
        assert says in result.output and token not in result.output
        if fmt == "json":
            assert json.loads(result.output)["ok"] is False
    assert vault_signable.catalog_path.read_text() == before
    assert sorted(p for p in (vault_signable.root / "artifacts").rglob("*")) == stored


TRANSIT_MIN_2 = "    - {name: transit-release, vault: vault://transit/keys/release, min_version: 2}\n"


def test_a_vault_key_signs_with_its_latest_version_and_it_is_recorded(vault: FakeVault, signable: Signable) -> None:
    vault.create_key("release", type="ecdsa-p384")
    text = signable.catalog_path.read_text().replace("  environments:\n", TRANSIT_MIN_2 + "  environments:\n", 1)
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
