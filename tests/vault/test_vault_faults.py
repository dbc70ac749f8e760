"""catalog.vault when Vault fails: down, sealed, hanging, 5xx, a token that expires mid-way, bad settings.

Bounded retries are counted, never timed: the fake counts the requests it got, the adapter's backoff
sleeps are recorded instead of slept, and a hanging fake never answers, so a client's timeout fires
whatever the machine's load.
"""

from __future__ import annotations

import pickle

import pytest

from catalog.errors import UsageError, VaultForbidden, VaultSealed, VaultUnreachable
from catalog.vault import DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT, Vault
from tests.vault.fake_backend import FakeBackend
from tests.vault_server import FakeVault

MESSAGE = b"payload"


@pytest.fixture
def backend(vault: FakeVault) -> FakeBackend:
    return FakeBackend(vault)


def test_vault_down_fails_as_unreachable_after_the_bounded_attempts(backend: FakeBackend) -> None:
    name = backend.new_key("ecdsa-p256")
    vault = backend.adapter(attempts=3)
    backend.server.down()
    with pytest.raises(VaultUnreachable, match=f"transit/keys/{name}: cannot connect, 3 attempts") as caught:
        vault.transit_public_keys("transit", name)
    assert caught.value.exit_code == 2
    assert backend.sleeps == [0.25, 0.5]  # a doubling backoff between the three attempts, none after


def test_a_sealed_vault_fails_at_once_as_sealed(backend: FakeBackend) -> None:
    name = backend.new_key("ecdsa-p256")
    backend.server.seal()
    with pytest.raises(VaultSealed, match=f"transit/sign/{name}: Vault is sealed"):
        backend.adapter(attempts=5).transit_sign("transit", name, MESSAGE, "sha2-256")
    assert backend.server.count(f"sign/{name}") == 1 and backend.sleeps == []


def test_a_hanging_vault_times_out_each_attempt_then_fails_closed_with_the_reason(backend: FakeBackend) -> None:
    backend.server.write_secret("app/token", {"token": "t"})
    backend.server.hang()
    with pytest.raises(VaultUnreachable, match=r"secret/data/app/token: no answer within 0.2 s, 2 attempts"):
        backend.adapter(timeout=0.2, attempts=2).kv_read("secret", "app/token")
    assert backend.server.count("secret/data/app/token") == 2 and backend.sleeps == [0.25]


def test_a_5xx_is_tried_again_and_passes_within_the_attempts(backend: FakeBackend) -> None:
    name = backend.new_key("ecdsa-p384")
    backend.server.fail_next(2, status=502)
    version, der = backend.adapter(attempts=3).transit_sign("transit", name, MESSAGE, "sha2-384")
    assert version == 1 and der
    assert backend.server.count(f"sign/{name}") == 3 and backend.sleeps == [0.25, 0.5]


@pytest.mark.parametrize(
    ("status", "said"), [(500, "HTTP 500"), (502, "HTTP 502"), (503, "HTTP 503"), (429, "HTTP 429")]
)
def test_a_5xx_that_lasts_fails_as_unreachable_with_the_status(backend: FakeBackend, status: int, said: str) -> None:
    name = backend.new_key("ecdsa-p256")
    backend.server.fail_next(3, status=status)
    with pytest.raises(VaultUnreachable, match=f"transit/keys/{name}: {said} .*, 3 attempts"):
        backend.adapter(attempts=3).transit_public_keys("transit", name)
    assert backend.server.count(f"keys/{name}") == 3


def test_a_token_that_expires_mid_way_fails_the_next_call_as_forbidden(backend: FakeBackend) -> None:
    name = backend.new_key("ecdsa-p256")
    token = backend.server.create_token()
    vault = backend.adapter(token=token)
    assert vault.transit_sign("transit", name, MESSAGE, "sha2-256")[0] == 1
    backend.server.expire(token)
    with pytest.raises(VaultForbidden, match="permission denied"):
        vault.transit_sign("transit", name, MESSAGE, "sha2-256")
    assert backend.server.count(f"sign/{name}") == 2  # a 403 is not tried again


def test_a_token_past_its_ttl_is_forbidden(backend: FakeBackend) -> None:
    backend.server.write_secret("app/token", {"token": "t"})
    vault = backend.adapter(token=backend.server.create_token(ttl=300))
    assert vault.kv_read("secret", "app/token").version == 1
    backend.server.advance(301)
    with pytest.raises(VaultForbidden):
        vault.kv_read("secret", "app/token")


def test_from_env_reads_vaults_variables_and_ours(vault: FakeVault) -> None:
    env = vault.env() | {"VAULT_NAMESPACE": "team", "MODELCAT_VAULT_TIMEOUT": "2.5", "MODELCAT_VAULT_ATTEMPTS": "4"}
    client = Vault.from_env(env)
    assert (client.address, client.namespace, client.timeout, client.attempts) == (vault.addr, "team", 2.5, 4)
    plain = Vault.from_env(vault.env())
    assert (plain.namespace, plain.timeout, plain.attempts) == (None, DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS)
    assert repr(client) == f"Vault({vault.addr!r}, namespace='team')"


@pytest.mark.parametrize(
    ("env", "error", "said"),
    [
        ({"VAULT_TOKEN": "t"}, UsageError, "VAULT_ADDR=''"),
        ({"VAULT_ADDR": "vault:8200", "VAULT_TOKEN": "t"}, UsageError, "e.g. https://"),
        ({"VAULT_ADDR": "http://127.0.0.1:1"}, VaultForbidden, "VAULT_TOKEN is not set"),
        ({"VAULT_ADDR": "http://x", "VAULT_TOKEN": "t", "MODELCAT_VAULT_TIMEOUT": "soon"}, UsageError, "number of"),
        ({"VAULT_ADDR": "http://x", "VAULT_TOKEN": "t", "MODELCAT_VAULT_ATTEMPTS": "0"}, UsageError, "whole number"),
    ],
)
def test_from_env_refuses_what_cannot_work(env: dict[str, str], error: type[Exception], said: str) -> None:
    with pytest.raises(error, match=said):
        Vault.from_env(env)


def test_a_vault_client_is_never_pickled(vault: FakeVault) -> None:
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(Vault(vault.addr, vault.token))
