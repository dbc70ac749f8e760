"""A fake Vault for the tests: the subset of Vault's HTTP API that modelcat uses, on a loopback port.

No Vault or OpenBao server can be installed on the machines the tests run on, so this one stands in,
written from Vault's API documentation and checked with ``hvac`` as the client
(tests/vault/test_vault_server.py). It serves, under ``/v1/``:

- ``sys/health`` and ``sys/seal-status`` (unauthenticated; health answers 503 while sealed);
- token auth: ``X-Vault-Token`` (or ``Authorization: Bearer``); a missing, unknown, expired or revoked
  token gets 403 ``{"errors": ["permission denied"]}``; ``auth/token/lookup-self``,
  ``auth/token/create`` (a child token with a ``ttl``);
- Transit at each enabled mount: ``POST keys/:name`` (type ecdsa-p256, ecdsa-p384, or aes256-gcm96 as a
  key that cannot sign), ``GET keys/:name`` (every version's public key PEM, ``latest_version``),
  ``POST keys/:name/rotate``, ``POST sign/:name[/:hash]`` and ``POST verify/:name[/:hash]`` (real
  ECDSA, ``hash_algorithm``, ``prehashed``, ``key_version``, ``marshaling_algorithm`` asn1 or jws, the
  signature prefixed ``vault:vN:``); a sign with an unknown key is a 400 "signing key not found", as in
  Vault;
- KV v2 at each enabled mount: ``GET data/:path[?version=N]``, ``POST``/``PUT data/:path``.

Every other request is sealed (503 ``Vault is sealed``) while sealed, then checked for its token,
then routed (404 for a path no engine serves). Switches for the faults: ``seal()``, ``hang()`` (every
request waits until ``release()`` or the server stops: a client's timeout fires whatever the load),
``fail_next(n, status)``, ``down()``/``up()`` (connection refused on the same port), ``expire(token)``,
``expire_after(token, requests=n)`` (a token that expires mid-way, counted in requests, never timed)
and a clock the test moves (``advance(seconds)``) for token TTLs. ``requests`` lists what was asked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CURVES: dict[str, ec.EllipticCurve] = {"ecdsa-p256": ec.SECP256R1(), "ecdsa-p384": ec.SECP384R1()}
CURVE_NAMES = {"ecdsa-p256": "P-256", "ecdsa-p384": "P-384"}
SYMMETRIC = {"aes256-gcm96"}  # a key that exists but cannot sign
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha2-224": hashes.SHA224,
    "sha2-256": hashes.SHA256,
    "sha2-384": hashes.SHA384,
    "sha2-512": hashes.SHA512,
    "sha3-224": hashes.SHA3_224,
    "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384,
    "sha3-512": hashes.SHA3_512,
}


class VaultFailure(Exception):
    """An error answer: Vault's ``{"errors": [...]}`` with a status."""

    def __init__(self, status: int, *errors: str) -> None:
        self.status, self.errors = status, list(errors)


@dataclass
class TransitKey:
    type: str
    versions: list[tuple[ec.EllipticCurvePrivateKey | None, datetime]] = field(default_factory=list)

    def add_version(self, now: datetime) -> None:
        curve = CURVES.get(self.type)
        self.versions.append((ec.generate_private_key(curve) if curve else None, now))

    def private(self, version: int) -> ec.EllipticCurvePrivateKey:
        if not 1 <= version <= len(self.versions):
            raise VaultFailure(400, f"invalid key version {version}")
        key = self.versions[version - 1][0]
        if key is None:
            raise VaultFailure(400, f"key type {self.type} does not support signing")
        return key

    def public_pem(self, version: int) -> str:
        return (
            self.private(version)
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


@dataclass
class Token:
    ttl: int | None  # seconds; None: never expires (a root token)
    issued: float
    revoked: bool = False
    uses_left: int | None = None  # authenticated requests it is still accepted for; None: no limit


def _b64decode(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise VaultFailure(400, f"missing {what}")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise VaultFailure(400, f"unable to decode {what} as base64") from None


def _duration(value: object) -> int | None:
    """A TTL as Vault takes it: seconds as a number, or '90s', '5m', '1h'."""
    if value in (None, "", 0):
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    units = {"s": 1, "m": 60, "h": 3600}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


class FakeVault:
    """The server's state and switches; ``start()`` serves it on ``addr``, ``stop()`` stops it."""

    def __init__(self, transit_mounts: tuple[str, ...] = ("transit",), kv_mounts: tuple[str, ...] = ("secret",)):
        self.transit_mounts, self.kv_mounts = set(transit_mounts), set(kv_mounts)
        self.token = "hvs." + secrets.token_urlsafe(24)  # the root token
        self.keys: dict[tuple[str, str], TransitKey] = {}
        self.kv: dict[tuple[str, str], list[tuple[dict[str, Any], datetime]]] = {}
        self.tokens: dict[str, Token] = {self.token: Token(None, 0.0)}
        self.requests: list[tuple[str, str]] = []
        self.sealed = False
        self.offset = 0.0  # seconds added to the wall clock: advance() moves it
        self._failures: list[int] = []
        self._hanging = False
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    # -- switches and set-up, for the tests ------------------------------------------------------

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, token: str | None = None) -> dict[str, str]:
        return {"VAULT_ADDR": self.addr, "VAULT_TOKEN": token or self.token}

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def seal(self) -> None:
        self.sealed = True

    def unseal(self) -> None:
        self.sealed = False

    def hang(self) -> None:
        """Every request waits, unanswered, until ``release()`` (or the server stops)."""
        self._hanging = True

    def release(self) -> None:
        self._hanging = False

    def fail_next(self, count: int, status: int = 502) -> None:
        """The next ``count`` requests (any path) answer ``status`` with Vault's error body."""
        with self._lock:
            self._failures += [status] * count

    def create_token(self, ttl: int | None = None) -> str:
        """A token valid for ``ttl`` seconds of the fake's clock (``advance`` moves it); None: for ever."""
        with self._lock:
            return self._new_token(ttl)

    def expire(self, token: str) -> None:
        with self._lock:
            self.tokens[token].revoked = True

    def expire_after(self, token: str, requests: int) -> None:
        """``token`` is accepted for ``requests`` more authenticated requests, then refused with 403 as
        an expired token is (like a token created with ``num_uses``): an expiry mid-way, at a request
        the test chooses, whatever the machine's speed. Unauthenticated and sealed requests do not count."""
        with self._lock:
            self.tokens[token].uses_left = requests

    def create_key(self, name: str, type: str = "ecdsa-p256", mount: str = "transit") -> None:
        with self._lock:
            self._create_key(mount, name, type)

    def rotate(self, name: str, mount: str = "transit") -> int:
        with self._lock:
            key = self.keys[(mount, name)]
            key.add_version(self._utc())
            return len(key.versions)

    def public_key_pem(self, name: str, version: int, mount: str = "transit") -> bytes:
        return self.keys[(mount, name)].public_pem(version).encode()

    def write_secret(self, path: str, data: dict[str, Any], mount: str = "secret") -> int:
        with self._lock:
            versions = self.kv.setdefault((mount, path), [])
            versions.append((dict(data), self._utc()))
            return len(versions)

    def count(self, path_part: str) -> int:
        """How many requests named a path containing ``path_part``."""
        return sum(path_part in path for _, path in self.requests)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(), log_level="error", access_log=False, lifespan="off", loop="asyncio", timeout_graceful_shutdown=5
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Vault did not start")
            time.sleep(0.005)
        self._socket = sock
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(30)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def down(self) -> None:
        """Stop serving: connections to ``addr`` are refused until ``up()``."""
        self.stop()

    def up(self) -> None:
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.stop()

    # -- the HTTP API ----------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/{path:path}", self._handle, methods=["GET", "POST", "PUT", "LIST"])])

    async def _handle(self, request: Request) -> JSONResponse:
        path = request.path_params["path"].strip("/")
        self.requests.append((request.method, path))
        while self._hanging and self._server is not None and not self._server.should_exit:
            await asyncio.sleep(0.005)
        try:
            with self._lock:
                if self._failures:
                    status = self._failures.pop(0)
                    raise VaultFailure(status, "internal error" if status < 503 else "Vault is unavailable")
            raw = await request.body() if request.method in ("POST", "PUT") else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise VaultFailure(400, "failed to parse JSON input") from None
            if not isinstance(body, dict):
                raise VaultFailure(400, "failed to parse JSON input")
            with self._lock:
                status, payload = self._route(request, path, body)
        except VaultFailure as failure:
            return JSONResponse({"errors": failure.errors}, status_code=failure.status)
        return JSONResponse(payload, status_code=status)

    def _route(self, request: Request, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "sys/health":
            return (503 if self.sealed else 200), self._health()
        if path == "sys/seal-status":
            return 200, {"type": "shamir", "initialized": True, "sealed": self.sealed, "t": 1, "n": 1, "progress": 0}
        if self.sealed:
            raise VaultFailure(503, "Vault is sealed")
        token = self._token(request)
        if path == "auth/token/lookup-self":
            return 200, self._envelope(self._lookup(token))
        if path == "auth/token/create" and request.method in ("POST", "PUT"):
            child = self._new_token(_duration(body.get("ttl")))
            ttl = self.tokens[child].ttl or 0
            auth = {"client_token": child, "lease_duration": ttl, "renewable": bool(ttl), "policies": ["default"]}
            return 200, self._envelope(None) | {"auth": auth}
        for mount in sorted(self.transit_mounts, key=len, reverse=True):
            if path.startswith(mount + "/"):
                return self._transit(request.method, mount, path[len(mount) + 1 :], body)
        for mount in sorted(self.kv_mounts, key=len, reverse=True):
            if path.startswith(mount + "/"):
                return self._kv(request, mount, path[len(mount) + 1 :], body)
        raise VaultFailure(404, f'no handler for route "{path}". route entry not found.')

    def _token(self, request: Request) -> str:
        token = request.headers.get("x-vault-token") or request.headers.get("authorization", "").removeprefix("Bearer ")
        state = self.tokens.get(token)
        if state is None or state.revoked or (state.ttl is not None and self.now() >= state.issued + state.ttl):
            raise VaultFailure(403, "permission denied")
        if state.uses_left is not None:
            if state.uses_left == 0:
                state.revoked = True
                raise VaultFailure(403, "permission denied")
            state.uses_left -= 1
        return token

    def _new_token(self, ttl: int | None) -> str:
        token = "hvs." + secrets.token_urlsafe(24)
        self.tokens[token] = Token(ttl, self.now())
        return token

    def _lookup(self, token: str) -> dict[str, Any]:
        state = self.tokens[token]
        left = 0 if state.ttl is None else int(state.issued + state.ttl - self.now())
        expire = None if state.ttl is None else datetime.fromtimestamp(state.issued + state.ttl, UTC).isoformat()
        return {"id": token, "ttl": left, "creation_ttl": state.ttl or 0, "expire_time": expire, "renewable": False}

    # Transit ------------------------------------------------------------------------------------

    def _create_key(self, mount: str, name: str, type: str) -> TransitKey:
        if type not in CURVES and type not in SYMMETRIC:
            raise VaultFailure(400, f"unknown key type {type}")
        key = self.keys.get((mount, name))
        if key is None:  # creating an existing key changes nothing, as in Vault
            key = self.keys[(mount, name)] = TransitKey(type)
            key.add_version(self._utc())
        return key

    def _key(self, mount: str, name: str, missing: VaultFailure) -> TransitKey:
        key = self.keys.get((mount, name))
        if key is None:
            raise missing
        return key

    def _transit(self, method: str, mount: str, rest: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = rest.split("/")
        if parts[0] == "keys" and len(parts) == 2 and method in ("POST", "PUT"):
            return 200, self._envelope(
                self._key_info(parts[1], self._create_key(mount, parts[1], body.get("type", "aes256-gcm96")))
            )
        if parts[0] == "keys" and len(parts) == 2 and method == "GET":
            return 200, self._envelope(self._key_info(parts[1], self._key(mount, parts[1], VaultFailure(404))))
        if parts[0] == "keys" and len(parts) == 3 and parts[2] == "rotate" and method in ("POST", "PUT"):
            key = self._key(mount, parts[1], VaultFailure(400, "key not found"))
            key.add_version(self._utc())
            return 200, self._envelope(self._key_info(parts[1], key))
        if parts[0] in ("sign", "verify") and len(parts) in (2, 3) and method in ("POST", "PUT"):
            hash_name = parts[2] if len(parts) == 3 else body.get("hash_algorithm", "sha2-256")
            key = self._key(
                mount,
                parts[1],
                VaultFailure(400, f"{'signing' if parts[0] == 'sign' else 'signature verification'} key not found"),
            )
            if key.type not in CURVES:
                raise VaultFailure(400, f"key type {key.type} does not support signing")
            sign = self._sign if parts[0] == "sign" else self._verify
            return 200, self._envelope(sign(key, hash_name, body))
        raise VaultFailure(405 if parts[0] in ("keys", "sign", "verify") else 404, "unsupported operation")

    def _key_info(self, name: str, key: TransitKey) -> dict[str, Any]:
        signs = key.type in CURVES
        keys: dict[str, Any] = {
            str(n): {
                "creation_time": created.isoformat(),
                "name": CURVE_NAMES[key.type],
                "public_key": key.public_pem(n),
            }
            if signs
            else int(created.timestamp())
            for n, (_, created) in enumerate(key.versions, start=1)
        }
        return {
            "name": name,
            "type": key.type,
            "keys": keys,
            "latest_version": len(key.versions),
            "min_available_version": 0,
            "min_decryption_version": 1,
            "min_encryption_version": 0,
            "supports_signing": signs,
            "supports_encryption": not signs,
            "supports_decryption": not signs,
            "supports_derivation": not signs,
            "exportable": False,
            "deletion_allowed": False,
            "derived": False,
        }

    @staticmethod
    def _digest(hash_name: str, body: dict[str, Any]) -> tuple[bytes, hashes.HashAlgorithm]:
        algorithm = HASHES.get(hash_name)
        if algorithm is None:
            raise VaultFailure(400, f"unsupported hash algorithm {hash_name}")
        data = _b64decode(body.get("input"), "input")
        if body.get("prehashed"):
            if len(data) != algorithm.digest_size:
                raise VaultFailure(400, f"input is not a {hash_name} digest")
            return data, algorithm()
        digest = hashes.Hash(algorithm())
        digest.update(data)
        return digest.finalize(), algorithm()

    def _sign(self, key: TransitKey, hash_name: str, body: dict[str, Any]) -> dict[str, Any]:
        version = int(body.get("key_version") or len(key.versions))
        digest, algorithm = self._digest(hash_name, body)
        der = key.private(version).sign(digest, ec.ECDSA(Prehashed(algorithm)))
        marshaling = body.get("marshaling_algorithm", "asn1")
        if marshaling == "asn1":
            encoded = base64.b64encode(der).decode()
        elif marshaling == "jws":
            size = (key.private(version).curve.key_size + 7) // 8
            r, s = decode_dss_signature(der)
            encoded = base64.urlsafe_b64encode(r.to_bytes(size) + s.to_bytes(size)).decode().rstrip("=")
        else:
            raise VaultFailure(400, f"unsupported marshaling algorithm {marshaling}")
        return {"signature": f"vault:v{version}:{encoded}", "key_version": version}

    def _verify(self, key: TransitKey, hash_name: str, body: dict[str, Any]) -> dict[str, Any]:
        signature = str(body.get("signature", ""))
        prefix, _, encoded = signature.rpartition(":")
        if not prefix.startswith("vault:v") or not prefix[7:].isdigit():
            raise VaultFailure(400, "invalid signature: no version prefix")
        version = int(prefix[7:])
        digest, algorithm = self._digest(hash_name, body)
        marshaling = body.get("marshaling_algorithm", "asn1")
        try:
            if marshaling == "jws":
                raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
                half = len(raw) // 2
                der = encode_dss_signature(int.from_bytes(raw[:half]), int.from_bytes(raw[half:]))
            else:
                der = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise VaultFailure(400, "invalid signature encoding") from None
        try:
            key.private(version).public_key().verify(der, digest, ec.ECDSA(Prehashed(algorithm)))
        except (InvalidSignature, ValueError):
            return {"valid": False}
        return {"valid": True}

    # KV v2 --------------------------------------------------------------------------------------

    def _kv(self, request: Request, mount: str, rest: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        kind, _, path = rest.partition("/")
        if kind != "data" or not path:
            raise VaultFailure(404, f'no handler for route "{mount}/{rest}". route entry not found.')
        if request.method == "GET":
            versions = self.kv.get((mount, path), [])
            version = int(request.query_params.get("version") or 0) or len(versions)
            if not 1 <= version <= len(versions):
                raise VaultFailure(404)
            data, created = versions[version - 1]
            return 200, self._envelope({"data": data, "metadata": self._kv_metadata(version, created)})
        data = body.get("data")
        if not isinstance(data, dict):
            raise VaultFailure(400, "no data provided")
        versions = self.kv.setdefault((mount, path), [])
        versions.append((data, self._utc()))
        return 200, self._envelope(self._kv_metadata(len(versions), versions[-1][1]))

    @staticmethod
    def _kv_metadata(version: int, created: datetime) -> dict[str, Any]:
        return {
            "created_time": created.isoformat(),
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": version,
        }

    # ------------------------------------------------------------------------------------------

    def _utc(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def _health(self) -> dict[str, Any]:
        return {
            "initialized": True,
            "sealed": self.sealed,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(self.now()),
            "version": "1.19.0+fake",
        }

    @staticmethod
    def _envelope(data: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": None,
            "auth": None,
        }
