"""Vault, through hvac: the one module that talks to it (Transit signing keys, KV v2 secrets).

``Vault.from_env()`` reads ``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_NAMESPACE`` and ``VAULT_CACERT`` as
Vault's own CLI does, and ``MODELCAT_VAULT_TIMEOUT`` (seconds per request, default 5) and
``MODELCAT_VAULT_ATTEMPTS`` (default 3). A request that cannot connect, times out or gets a 5xx is
tried again with a doubling backoff, up to the attempts, then fails as ``VaultUnreachable`` with the
last reason; a sealed Vault (503 "Vault is sealed") fails at once as ``VaultSealed``, a 403 as
``VaultForbidden``, a missing key, secret or version as ``VaultNotFound``. Every error names the
address and the path, never the token: the token lives in the hvac client only, and this class's
``repr`` leaves it out, and it refuses to be pickled.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import hvac
import hvac.exceptions
import requests

from catalog.errors import (
    UsageError,
    VaultError,
    VaultForbidden,
    VaultNotFound,
    VaultSealed,
    VaultUnreachable,
)

__all__ = ["DEFAULT_ATTEMPTS", "DEFAULT_TIMEOUT", "HashAlgorithm", "KvSecret", "TransitKeyInfo", "Vault"]

DEFAULT_TIMEOUT = 5.0  # seconds per request
DEFAULT_ATTEMPTS = 3  # tries of one request before Vault counts as unreachable
FIRST_BACKOFF = 0.25  # seconds before the second try; doubled before each next one
HashAlgorithm = Literal["sha2-256", "sha2-384"]
_SEALED = "Vault is sealed"  # a 503's error while sealed; other 503s (standby, maintenance) may pass

# hvac's exception for each status that may pass if asked again: a 5xx, or 429 (rate limit, standby)
_TRANSIENT: dict[type[hvac.exceptions.VaultError], str] = {
    hvac.exceptions.InternalServerError: "HTTP 500",
    hvac.exceptions.BadGateway: "HTTP 502",
    hvac.exceptions.VaultDown: "HTTP 503",
    hvac.exceptions.RateLimitExceeded: "HTTP 429",
}


@dataclass(frozen=True, slots=True)
class TransitKeyInfo:
    """A Transit key as Vault shows it: its type, latest version, and each version's public key (PEM)."""

    type: str
    latest_version: int
    public_keys: dict[int, bytes]


@dataclass(frozen=True, slots=True)
class KvSecret:
    """One version of a KV v2 secret."""

    data: dict[str, Any]
    version: int


class Vault:
    """A Vault client that fails closed with the reason (see the module's docstring)."""

    def __init__(
        self,
        address: str,
        token: str,
        *,
        namespace: str | None = None,
        ca_cert: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = FIRST_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not address.startswith(("http://", "https://")):
            raise UsageError(
                f"VAULT_ADDR={address!r}: export the Vault server's address, e.g. https://vault.example.com:8200"
            )
        if not token:
            raise VaultForbidden(address, "VAULT_TOKEN is not set: log in to Vault and export the token")
        self.address = address.rstrip("/")
        self.namespace = namespace or None
        self.timeout, self.attempts, self.backoff, self._sleep = timeout, max(1, attempts), backoff, sleep
        self._client = hvac.Client(
            url=self.address, token=token, namespace=self.namespace, timeout=timeout, verify=ca_cert or True
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Vault:
        env = os.environ if environ is None else environ
        return cls(
            env.get("VAULT_ADDR", ""),
            env.get("VAULT_TOKEN", ""),
            namespace=env.get("VAULT_NAMESPACE"),
            ca_cert=env.get("VAULT_CACERT") or None,
            timeout=_setting(env, "MODELCAT_VAULT_TIMEOUT", DEFAULT_TIMEOUT),
            attempts=int(_setting(env, "MODELCAT_VAULT_ATTEMPTS", DEFAULT_ATTEMPTS, whole=True)),
            **options,
        )

    def __repr__(self) -> str:
        namespace = f", namespace={self.namespace!r}" if self.namespace else ""
        return f"Vault({self.address!r}{namespace})"

    def __getstate__(self) -> NoReturn:
        raise TypeError("a Vault client holds a token and is never pickled: make one with Vault.from_env()")

    # -- the operations modelcat uses --------------------------------------------------------------

    def transit_public_keys(self, mount: str, name: str) -> TransitKeyInfo:
        """The key's type, latest version and every version's public key (none for a key that cannot sign)."""
        path = f"{mount}/keys/{name}"
        data = self._call(path, lambda c: c.secrets.transit.read_key(name, mount_point=mount))
        try:
            public_keys = {
                int(version): entry["public_key"].encode()
                for version, entry in data["keys"].items()
                if isinstance(entry, dict) and entry.get("public_key")
            }
            return TransitKeyInfo(str(data["type"]), int(data["latest_version"]), public_keys)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise VaultError(self.address, f"{path}: the answer is not a Transit key") from None

    def transit_sign(self, mount: str, name: str, message: bytes, hash_algorithm: HashAlgorithm) -> tuple[int, bytes]:
        """Vault signs ``message`` (hashed with ``hash_algorithm``) with the key's latest version:
        that version, and the DER (asn1) ECDSA signature."""
        path = f"{mount}/sign/{name}"
        data = self._call(
            path,
            lambda c: c.secrets.transit.sign_data(
                name,
                hash_input=base64.b64encode(message).decode(),
                hash_algorithm=hash_algorithm,
                marshaling_algorithm="asn1",
                mount_point=mount,
            ),
        )
        parts = str(data.get("signature") if isinstance(data, dict) else None).split(":")
        if len(parts) == 3 and parts[0] == "vault" and parts[1][:1] == "v" and parts[1][1:].isdigit():
            try:
                return int(parts[1][1:]), base64.b64decode(parts[2], validate=True)
            except binascii.Error:
                pass
        raise VaultError(self.address, f"{path}: the answer is not a vault:vN: signature")

    def kv_read(self, mount: str, path: str, version: int | None = None) -> KvSecret:
        """A KV v2 secret's data and version (the latest unless ``version`` is given)."""
        where = f"{mount}/data/{path}" + (f"?version={version}" if version else "")
        data = self._call(
            where,
            lambda c: c.secrets.kv.v2.read_secret_version(
                path, version=version, mount_point=mount, raise_on_deleted_version=True
            ),
        )
        try:
            return KvSecret(dict(data["data"]), int(data["metadata"]["version"]))
        except (KeyError, TypeError, ValueError):
            raise VaultError(self.address, f"{where}: the answer is not a KV v2 secret") from None

    # -- one request, its retries and its errors ---------------------------------------------------

    def _call(self, path: str, request: Callable[[hvac.Client], Any]) -> Any:
        """``request``'s answer's ``data``, tried up to ``attempts`` times; Vault's refusals translated."""
        delay = self.backoff
        reason, cause = "", Exception()
        for attempt in range(1, self.attempts + 1):
            try:
                answer = request(self._client)
            except requests.exceptions.RequestException as e:
                reason, cause = _unanswered(e, self.timeout), e
            except hvac.exceptions.VaultError as e:
                if type(e) not in _TRANSIENT or _SEALED in _errors(e):
                    self._refused(path, e)
                reason, cause = _TRANSIENT[type(e)] + (f" ({_errors(e)})" if _errors(e) else ""), e
            else:
                if not isinstance(answer, dict) or "data" not in answer:
                    raise VaultError(self.address, f"{path}: the answer is not Vault's JSON")
                return answer["data"]
            if attempt < self.attempts:
                self._sleep(delay)
                delay *= 2
        raise VaultUnreachable(self.address, f"{path}: {reason}, {self.attempts} attempts") from cause

    def _refused(self, path: str, e: hvac.exceptions.VaultError) -> NoReturn:
        errors = _errors(e)
        if _SEALED in errors:
            raise VaultSealed(self.address, f"{path}: Vault is sealed") from e
        if isinstance(e, hvac.exceptions.Forbidden):
            raise VaultForbidden(
                self.address, f"{path}: permission denied (the token is bad, expired or revoked, or not allowed here)"
            ) from e
        # A Transit key that does not exist is a 404 to read and a 400 "... key not found" to use
        if isinstance(e, hvac.exceptions.InvalidPath) or (
            isinstance(e, hvac.exceptions.InvalidRequest) and "not found" in errors
        ):
            raise VaultNotFound(self.address, f"{path}: not found" + (f" ({errors})" if errors else "")) from e
        raise VaultError(self.address, f"{path}: {errors or type(e).__name__}") from e


def _unanswered(e: requests.exceptions.RequestException, timeout: float) -> str:
    if isinstance(e, requests.exceptions.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(e, requests.exceptions.SSLError):
        return "the TLS handshake failed (VAULT_CACERT names the CA that signed Vault's certificate)"
    return "cannot connect"


def _errors(e: hvac.exceptions.VaultError) -> str:
    """Vault's own words (its ``errors`` list), without hvac's ', on GET URL' suffix."""
    errors = e.errors or []
    return errors if isinstance(errors, str) else "; ".join(str(x) for x in errors)


def _setting(env: Mapping[str, str], name: str, default: float, whole: bool = False) -> float:
    """A positive number from the environment (a whole one if ``whole``), or ``default`` when unset."""
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = 0
    if not 0 < value < float("inf"):
        raise UsageError(f"{name}={raw!r}: write a positive {'whole number' if whole else 'number of seconds'}")
    return value
