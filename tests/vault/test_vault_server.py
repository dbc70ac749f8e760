"""The fake Vault (tests/vault_server.py) answers as Vault's API documentation says, with hvac as the client."""

from __future__ import annotations

import base64
import hashlib
import socket

import hvac
import hvac.exceptions
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.vault_server import FakeVault

MESSAGE = b"the bytes a release signs"


def client(vault: FakeVault, token: str | None = None, timeout: float = 30) -> hvac.Client:
    return hvac.Client(url=vault.addr, token=token or vault.token, timeout=timeout)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def verify_locally(pem: str, signature: str, message: bytes, algorithm: hashes.HashAlgorithm) -> int:
    """Checks a ``vault:vN:`` asn1 signature with the PEM alone; returns N."""
    prefix, version, encoded = signature.split(":")
    assert prefix == "vault"
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(base64.b64decode(encoded), message, ec.ECDSA(algorithm))  # raises if it does not hold
    return int(version.removeprefix("v"))


@pytest.mark.parametrize(
    ("key_type", "hash_algorithm", "algorithm", "curve"),
    [
        ("ecdsa-p256", "sha2-256", hashes.SHA256(), "secp256r1"),
        ("ecdsa-p384", "sha2-384", hashes.SHA384(), "secp384r1"),
    ],
)
def test_a_transit_key_signs_with_ecdsa_and_shows_its_public_key(
    vault: FakeVault, key_type: str, hash_algorithm: str, algorithm: hashes.HashAlgorithm, curve: str
) -> None:
    c = client(vault)
    c.secrets.transit.create_key("release", key_type=key_type)
    info = c.secrets.transit.read_key("release")["data"]
    assert info["type"] == key_type and info["latest_version"] == 1 and info["supports_signing"]
    pem = info["keys"]["1"]["public_key"]
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == curve

    signed = c.secrets.transit.sign_data(
        "release", hash_input=b64(MESSAGE), hash_algorithm=hash_algorithm, marshaling_algorithm="asn1"
    )["data"]
    assert signed["signature"].startswith("vault:v1:") and signed["key_version"] == 1
    assert verify_locally(pem, signed["signature"], MESSAGE, algorithm) == 1
    verified = c.secrets.transit.verify_signed_data(
        "release", hash_input=b64(MESSAGE), signature=signed["signature"], hash_algorithm=hash_algorithm
    )
    assert verified["data"]["valid"] is True
    other = c.secrets.transit.verify_signed_data(
        "release", hash_input=b64(MESSAGE + b"!"), signature=signed["signature"], hash_algorithm=hash_algorithm
    )
    assert other["data"]["valid"] is False


def test_the_hash_algorithm_may_be_named_in_the_url(vault: FakeVault) -> None:
    vault.create_key("release", "ecdsa-p384")
    answer = client(vault).adapter.post("/v1/transit/sign/release/sha2-384", json={"input": b64(MESSAGE)})
    pem = vault.public_key_pem("release", 1).decode()
    assert verify_locally(pem, answer["data"]["signature"], MESSAGE, hashes.SHA384()) == 1


def test_a_prehashed_input_is_signed_as_the_digest_it_is(vault: FakeVault) -> None:
    vault.create_key("release")
    digest = hashlib.sha256(MESSAGE).digest()
    signed = client(vault).secrets.transit.sign_data("release", hash_input=b64(digest), prehashed=True)
    assert verify_locally(
        vault.public_key_pem("release", 1).decode(), signed["data"]["signature"], MESSAGE, hashes.SHA256()
    )


def test_jws_marshaling_is_r_and_s_side_by_side(vault: FakeVault) -> None:
    vault.create_key("release")
    c = client(vault)
    signature = c.secrets.transit.sign_data("release", hash_input=b64(MESSAGE), marshaling_algorithm="jws")["data"][
        "signature"
    ]
    encoded = signature.split(":")[2]
    assert len(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))) == 64
    verified = c.secrets.transit.verify_signed_data(
        "release", hash_input=b64(MESSAGE), signature=signature, marshaling_algorithm="jws"
    )
    assert verified["data"]["valid"] is True


def test_rotation_adds_a_version_that_signs_while_the_old_ones_still_verify(vault: FakeVault) -> None:
    c = client(vault)
    c.secrets.transit.create_key("release", key_type="ecdsa-p256")
    first = c.secrets.transit.sign_data("release", hash_input=b64(MESSAGE))["data"]["signature"]
    c.secrets.transit.rotate_key("release")
    info = c.secrets.transit.read_key("release")["data"]
    assert info["latest_version"] == 2 and sorted(info["keys"]) == ["1", "2"]
    assert info["keys"]["1"]["public_key"] != info["keys"]["2"]["public_key"]
    second = c.secrets.transit.sign_data("release", hash_input=b64(MESSAGE))["data"]["signature"]
    assert second.startswith("vault:v2:")
    assert verify_locally(info["keys"]["2"]["public_key"], second, MESSAGE, hashes.SHA256()) == 2
    assert c.secrets.transit.verify_signed_data("release", hash_input=b64(MESSAGE), signature=first)["data"]["valid"]
    pinned = c.secrets.transit.sign_data("release", hash_input=b64(MESSAGE), key_version=1)["data"]["signature"]
    assert verify_locally(info["keys"]["1"]["public_key"], pinned, MESSAGE, hashes.SHA256()) == 1


def test_a_key_that_does_not_exist_is_404_to_read_and_400_to_sign_as_in_vault(vault: FakeVault) -> None:
    c = client(vault)
    with pytest.raises(hvac.exceptions.InvalidPath):
        c.secrets.transit.read_key("nobody")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="signing key not found"):
        c.secrets.transit.sign_data("nobody", hash_input=b64(MESSAGE))


def test_a_symmetric_key_cannot_sign(vault: FakeVault) -> None:
    c = client(vault)
    c.secrets.transit.create_key("secretive", key_type="aes256-gcm96")
    info = c.secrets.transit.read_key("secretive")["data"]
    assert info["supports_signing"] is False and isinstance(info["keys"]["1"], int)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="does not support signing"):
        c.secrets.transit.sign_data("secretive", hash_input=b64(MESSAGE))


def test_kv_v2_keeps_every_version_of_a_secret(vault: FakeVault) -> None:
    c = client(vault)
    written = c.secrets.kv.v2.create_or_update_secret("checkout/token", secret={"token": "one"})
    assert written["data"]["version"] == 1
    c.secrets.kv.v2.create_or_update_secret("checkout/token", secret={"token": "two"})
    latest = c.secrets.kv.v2.read_secret_version("checkout/token", raise_on_deleted_version=True)["data"]
    assert latest["data"] == {"token": "two"} and latest["metadata"]["version"] == 2
    first = c.secrets.kv.v2.read_secret_version("checkout/token", version=1, raise_on_deleted_version=True)["data"]
    assert first["data"] == {"token": "one"} and first["metadata"]["version"] == 1


def test_a_secret_or_version_that_does_not_exist_is_404(vault: FakeVault) -> None:
    c = client(vault)
    vault.write_secret("checkout/token", {"token": "one"})
    with pytest.raises(hvac.exceptions.InvalidPath):
        c.secrets.kv.v2.read_secret_version("checkout/nothing", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidPath):
        c.secrets.kv.v2.read_secret_version("checkout/token", version=2, raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidPath, match="no handler for route"):
        c.secrets.kv.v2.read_secret_version("x", mount_point="not-mounted", raise_on_deleted_version=True)


def test_a_bad_or_missing_token_is_403_permission_denied(vault: FakeVault) -> None:
    vault.create_key("release")
    assert client(vault).is_authenticated()
    bad = hvac.Client(url=vault.addr, token="hvs.not-a-token")
    assert not bad.is_authenticated()
    with pytest.raises(hvac.exceptions.Forbidden, match="permission denied"):
        bad.secrets.transit.read_key("release")
    answer = requests.get(f"{vault.addr}/v1/transit/keys/release", timeout=30)
    assert answer.status_code == 403 and answer.json() == {"errors": ["permission denied"]}


def test_a_token_expires_after_its_ttl_on_the_fakes_clock(vault: FakeVault) -> None:
    vault.write_secret("app/db", {"password": "p"})
    created = client(vault).auth.token.create(ttl="60s")["auth"]
    assert created["lease_duration"] == 60
    child = client(vault, created["client_token"])
    assert 0 < child.auth.token.lookup_self()["data"]["ttl"] <= 60
    assert child.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)
    vault.advance(61)
    with pytest.raises(hvac.exceptions.Forbidden):
        child.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)
    assert client(vault).is_authenticated()  # the root token has no TTL


def test_an_expired_token_is_refused_from_then_on(vault: FakeVault) -> None:
    token = vault.create_token()
    c = client(vault, token)
    assert c.is_authenticated()
    vault.expire(token)
    assert not c.is_authenticated()


def test_expire_after_accepts_a_token_for_that_many_requests_then_refuses_it_with_403(vault: FakeVault) -> None:
    vault.write_secret("app/db", {"password": "p"})
    token = vault.create_token()
    c = client(vault, token)
    vault.expire_after(token, requests=2)
    assert c.sys.read_health_status(method="GET")["sealed"] is False  # unauthenticated: not counted
    assert client(vault).is_authenticated()  # another token's requests: not counted
    for _ in range(2):
        assert c.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)["data"]["data"] == {
            "password": "p"
        }
    with pytest.raises(hvac.exceptions.Forbidden, match="permission denied"):
        c.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)
    assert not c.is_authenticated()  # from then on
    answer = requests.get(f"{vault.addr}/v1/secret/data/app/db", headers={"X-Vault-Token": token}, timeout=30)
    assert answer.status_code == 403 and answer.json() == {"errors": ["permission denied"]}
    assert client(vault).is_authenticated()


def test_expire_after_no_requests_refuses_the_token_at_once(vault: FakeVault) -> None:
    token = vault.create_token()
    vault.expire_after(token, requests=0)
    assert not client(vault, token).is_authenticated()


def test_sealed_vault_answers_503_to_everything_but_health(vault: FakeVault) -> None:
    vault.create_key("release")
    c = client(vault)
    vault.seal()
    assert c.sys.is_sealed()
    health = requests.get(f"{vault.addr}/v1/sys/health", timeout=30)
    assert health.status_code == 503 and health.json()["sealed"] is True
    with pytest.raises(hvac.exceptions.VaultDown, match="Vault is sealed"):
        c.secrets.transit.read_key("release")
    vault.unseal()
    assert requests.get(f"{vault.addr}/v1/sys/health", timeout=30).status_code == 200
    assert c.secrets.transit.read_key("release")["data"]["latest_version"] == 1


def test_a_hanging_vault_makes_the_client_time_out_until_released(vault: FakeVault) -> None:
    vault.create_key("release")
    vault.hang()
    with pytest.raises(requests.exceptions.ReadTimeout):
        client(vault, timeout=0.2).secrets.transit.read_key("release")
    vault.release()
    assert client(vault).secrets.transit.read_key("release")["data"]["latest_version"] == 1


def test_fail_next_answers_that_many_errors_then_serves(vault: FakeVault) -> None:
    vault.create_key("release")
    vault.fail_next(2, status=502)
    c = client(vault)
    for _ in range(2):
        with pytest.raises(hvac.exceptions.BadGateway):
            c.secrets.transit.read_key("release")
    assert c.secrets.transit.read_key("release")["data"]["name"] == "release"
    assert vault.count("transit/keys/release") == 3


def test_down_refuses_connections_on_the_same_address_until_up(vault: FakeVault) -> None:
    vault.create_key("release")
    addr = vault.addr
    vault.down()
    with pytest.raises(requests.exceptions.ConnectionError):
        client(vault).secrets.transit.read_key("release")
    vault.up()
    assert vault.addr == addr
    assert client(vault).secrets.transit.read_key("release")["data"]["latest_version"] == 1


def test_the_server_is_stopped_after_its_block() -> None:
    with FakeVault() as server:
        port = server.port
        assert requests.get(f"{server.addr}/v1/sys/health", timeout=30).status_code == 200
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_body_that_is_not_json_is_400(vault: FakeVault) -> None:
    answer = requests.post(
        f"{vault.addr}/v1/transit/keys/k", data=b"{not json", headers={"X-Vault-Token": vault.token}, timeout=30
    )
    assert answer.status_code == 400 and answer.json() == {"errors": ["failed to parse JSON input"]}
