"""The router: one application's inference traffic split between model versions, and recorded.

Endpoints (Open Inference Protocol v2 REST, plus the router's own):

- ``POST /v2/models/{model}/infer``: the version is picked by the model's sticky header (its
  value hashed into one of 100 buckets, see ``catalog.domain.routing``), or at random by weight
  when the header is absent or empty; the request goes to
  ``/v2/models/{model}/versions/{version}/infer`` on a replica of that version.
- ``POST /v2/models/{model}/versions/{version}/infer``: the caller pins a version. Allowed for any
  version in the table, weight 0 included (to smoke-test a canary before it gets traffic);
  answered 404 for a version the table does not route. Pinned requests are logged with
  ``"assignment": "pinned"`` so an A/B analysis can leave them out.
- ``GET /v2/models/{model}[/versions/{version}]`` (metadata) and ``.../ready``: forwarded like an
  inference request; without a sticky key the metadata comes from the version with the largest
  weight, so it does not flip between calls.
- ``GET /v2/health/live``, ``GET /v2/health/ready`` (the table is loaded), ``GET /v2``.
- ``GET /v2/models/{model}[/versions/{version}]/config`` (Triton's own, not the protocol's): 404
  naming the metadata endpoint.

Request bodies are forwarded as they came, JSON or the binary tensor data extension's (its
``Inference-Header-Content-Length`` header with them): the router never decodes tensors. A body over
``max_body_bytes`` is answered 413 and not forwarded.
- ``GET /routing``: the table in force (versions, weights, buckets, digests, replicas and whether
  each is up), its file, sha256, generation and the last reload error.
- ``GET /metrics``: Prometheus text (``catalog.serving.router_telemetry``).
- ``POST /v2/feedback``: outcome events (``catalog.serving.feedback_endpoint``), stored in the
  analytics folder before they are acknowledged.

A model whose table block has a ``mirror`` is in a shadow step: a share of its routed requests is
copied, after the live answer, to the mirrored version, whose answers are compared and logged,
never returned, and never counted as assignments (``catalog.serving.mirror``).

Replicas of a version are used round robin, over pooled keep-alive connections. Retry policy: a
request is only ever sent to replicas of the version it was assigned, never silently to another
version. A replica that refuses or times out the connection is skipped (and ejected for a few
seconds) and the next replica of the same version is tried; a connection dropped before the
answer (a replica dying mid-request, or a stale keep-alive connection) is retried once on a fresh
connection to the same replica and then on the next replica, since inference has no side effects.
An HTTP error status from a replica is passed through untouched, and a read timeout is answered
504 without a retry (a slow replica is not a dead one, and a retry would double its load). When no
replica of the version can be reached the answer is 503 naming the model and version. A replica
whose ``x-model-version`` or ``x-model-digest`` header contradicts the table is treated as
unusable (502 when no replica of the version serves the right bytes). A caller that hangs up
before its request body arrived gets no answer and is counted (and logged) with status 499.

Every routed response carries ``x-request-id`` (the caller's when it is 1-128 printable ASCII
characters, else a new one), ``x-model-name``, and, once a version is chosen, ``x-model-version``
and ``x-model-digest`` from the table.

The table file is polled (``router_state.TableWatcher``); a new table is swapped in whole, between
requests, and a request in flight finishes with the table it started with.

The hot path is lean on purpose (BENCHMARKS.md, "Serving"): the forwarded endpoints are a plain
ASGI handler (the request was parsed by uvicorn's httptools; no Starlette routing or Request
object), and replicas are reached through ``catalog.serving.upstream``, a pooled HTTP/1.1 client
on asyncio with llhttp parsing, instead of httpx. The router's other endpoints are a Starlette app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from catalog.domain.routing import RandomSource
from catalog.errors import ModelcatError
from catalog.feedback.logs import append_table
from catalog.serving import DEFAULT_MAX_BODY_BYTES
from catalog.serving.feedback_endpoint import FeedbackEndpoint
from catalog.serving.mirror import MAX_IN_FLIGHT, Mirror, ShadowMetrics
from catalog.serving.router_choice import NotRouted, choose, identity_mismatch, record, request_id
from catalog.serving.router_state import LiveTable, ReplicaPool, TableWatcher, compile_table, describe
from catalog.serving.router_telemetry import AssignmentLog, RouterMetrics, prediction_of
from catalog.serving.table import LoadedTable, TableRoute, load_table
from catalog.serving.upstream import (
    ConnectFailed,
    ConnectTimeout,
    Dropped,
    PoolTimeout,
    ReadTimeout,
    UpstreamClient,
    UpstreamError,
    UpstreamResponse,
)

__all__ = ["Router", "RouterSettings"]

log = logging.getLogger("catalog.serving.router")

# Headers that belong to one connection (RFC 9110 7.6.1), or that the router writes itself.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)
# Not forwarded to a replica: the router sets Host and the request id, and it has read the whole
# body already, so an "Expect: 100-continue" was answered (by uvicorn) and must not be passed on.
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"x-request-id", b"expect"}
# Not passed back from a replica: uvicorn writes its own Date; the identity headers come from the table.
_NOT_PASSED_BACK = _HOP_BY_HOP | {
    b"date",
    b"server",
    b"x-request-id",
    b"x-model-name",
    b"x-model-version",
    b"x-model-digest",
}
_SUFFIX = {"infer": "/infer", "metadata": "", "ready": "/ready"}
_METHOD = {"infer": "POST", "metadata": "GET", "ready": "GET"}
_JSON = (b"content-type", b"application/json")


@dataclass(frozen=True)
class RouterSettings:
    table_path: Path
    # the stack's analytics folder: assignments and tables logged there, outcome events stored there
    analytics_dir: Path | None = None
    assignments_stdout: bool = False  # assignment lines to stdout too (a cluster's log pipeline)
    poll_interval: float = 0.25
    connect_timeout: float = 2.0
    timeout: float = 30.0
    eject_seconds: float = 2.0
    max_connections: int = 512
    keepalive_expiry: float = 4.0  # below uvicorn's keep-alive timeout (5 s) in the replicas
    rng: RandomSource | None = None
    mirror_max_in_flight: int = MAX_IN_FLIGHT  # mirrored copies in flight at once (more are dropped)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # the largest request body forwarded (else 413)


class _Failure(Exception):
    """No usable answer from any replica of the version: the status and message to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lowercase; ASGI servers lowercase header names)."""
    for key, value in headers:
        if key == name:
            return value
    return None


def _forwarded_path(path: str) -> tuple[str, str | None, str] | None:
    """``(model, pinned version or None, endpoint)`` when ``path`` is one the router forwards:
    ``/v2/models/M[/versions/V]`` followed by nothing (metadata), ``/infer`` or ``/ready`` (or
    ``/config``, which it answers itself)."""
    parts = path.split("/")
    if len(parts) < 4 or parts[1] != "v2" or parts[2] != "models" or not parts[3]:
        return None
    rest, version = parts[4:], None
    if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
        version, rest = rest[1], rest[2:]
    if not rest:
        return parts[3], version, "metadata"
    if len(rest) == 1 and rest[0] in ("infer", "ready", "config"):
        return parts[3], version, rest[0]
    return None


class Router:
    """One application's router: the table in force, the replica client, metrics and the log.

    Construction loads the table (raising ``RoutingTableInvalid``/``RoutingTableUnreadable``) and
    opens the assignment log; ``app`` is the ASGI application.
    """

    def __init__(self, settings: RouterSettings) -> None:
        self.settings = settings
        self.metrics = RouterMetrics()
        self.pool = ReplicaPool(eject_seconds=settings.eject_seconds)
        self.rng = settings.rng or random.Random()
        self.last_error: str | None = None
        # The watcher notes the file's identity before the first load: a change racing it is seen.
        self._watcher = TableWatcher(settings.table_path, self.install, self.reload_failed, settings.poll_interval)
        self.live: LiveTable = self._compiled(load_table(settings.table_path), 1)
        self.metrics.reloads.labels("ok").inc()
        self._client: UpstreamClient | None = None
        self._feedback = FeedbackEndpoint(lambda: self.live.loaded.table, settings.analytics_dir)
        self.log = AssignmentLog.open(
            settings.analytics_dir, self.live.application, settings.assignments_stdout, self.metrics
        )
        shadow = ShadowMetrics(self.metrics.registry)
        shadow_log = None
        if settings.analytics_dir is not None:
            shadow_log = AssignmentLog.open(
                settings.analytics_dir, self.live.application, False, kind="shadow", errors=shadow.log_errors
            )
        self.mirror = Mirror(shadow, self._send, shadow_log, settings.mirror_max_in_flight)
        self._shadow_log = shadow_log
        self._record_table(self.live)
        self._site = Starlette(routes=self._routes(), lifespan=self._lifespan)
        self.on_shutdown: list[Callable[[], None]] = []  # run (in a thread) before the logs close

    # -- the table --------------------------------------------------------------------------------

    def _compiled(self, loaded: LoadedTable, generation: int) -> LiveTable:
        live = compile_table(loaded, generation)
        weights = {(m.name, r.version): r.weight for m in live.models.values() for r in m.routes.values()}
        self.metrics.table_installed(generation, weights)
        return live

    def install(self, loaded: LoadedTable) -> None:
        """Put a freshly loaded table in force (one reference swap)."""
        self.last_error = None
        if loaded.sha256 == self.live.loaded.sha256:
            return
        self.live = self._compiled(loaded, self.live.generation + 1)
        self.metrics.reloads.labels("ok").inc()
        self._record_table(self.live)
        splits = "; ".join(
            f"{m.name}: " + ", ".join(f"{r.version}={r.weight}%" for r in m.routes.values())
            for m in self.live.models.values()
        )
        log.info("routing table reloaded (generation %d): %s", self.live.generation, splits)

    def _record_table(self, live: LiveTable) -> None:
        """Log the table put in force (its weights start an epoch of the A/B analysis)."""
        root = self.settings.analytics_dir
        if root is None:
            return
        weights = {m.name: {r.version: r.weight for r in m.routes.values()} for m in live.models.values()}
        try:
            append_table(root, live.application, live.loaded.sha256, weights)
        except OSError as e:
            log.error("cannot log the routing table in %s: %s", root, e)

    def reload_failed(self, error: ModelcatError) -> None:
        self.last_error = str(error)
        self.metrics.reloads.labels("error").inc()

    # -- lifecycle --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        s = self.settings
        self._client = client = UpstreamClient(
            connect_timeout=s.connect_timeout,
            read_timeout=s.timeout,
            max_connections=s.max_connections,
            keepalive_expiry=s.keepalive_expiry,
        )
        tasks = [
            asyncio.create_task(self._watcher.run(), name="table-watcher"),
            asyncio.create_task(self._sweep(client), name="idle-connection-sweeper"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.mirror.aclose()
            await client.aclose()
            for stop in self.on_shutdown:  # e.g. the gRPC side: its calls in flight still log their lines
                await asyncio.to_thread(stop)
            self.close()

    async def _sweep(self, client: UpstreamClient) -> None:
        while True:
            await asyncio.sleep(self.settings.keepalive_expiry)
            client.sweep()

    def close(self) -> None:
        for writer in (self.log, self._shadow_log):
            if writer is not None:
                writer.close()

    # -- endpoints --------------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application: forwarded paths handled here, the rest (and lifespan) by Starlette."""
        if scope["type"] == "http":
            forwarded = _forwarded_path(scope["path"])
            if forwarded is not None and forwarded[2] == "config":
                model, version = forwarded[0], forwarded[1]
                where = f"/v2/models/{model}" + (f"/versions/{version}" if version else "")
                message = f"model configuration is Triton's own endpoint, not the Open Inference Protocol's; GET {where} answers the model's metadata"
                await _error(send, 404, message, [])
                return
            if forwarded is not None:
                await self._forward(scope, receive, send, *forwarded)
                return
        await self._site(scope, receive, send)

    def _routes(self) -> list[Route]:
        return [
            Route("/v2/health/live", self._live, methods=["GET"]),
            Route("/v2/health/ready", self._ready, methods=["GET"]),
            Route("/v2", self._server_metadata, methods=["GET"]),
            Route("/routing", self._routing, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
            Route("/v2/feedback", self._feedback.handle, methods=["POST"]),
        ]

    async def _live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def _ready(self, request: Request) -> Response:
        return JSONResponse({"ready": True, "application": self.live.application, "generation": self.live.generation})

    async def _server_metadata(self, request: Request) -> Response:
        return JSONResponse({"name": "modelcat-router", "version": "1", "extensions": ["binary_tensor_data"]})

    async def _routing(self, request: Request) -> Response:
        return JSONResponse(describe(self.live, self.pool, self.last_error))

    async def _metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- routing ----------------------------------------------------------------------------------

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, name: str, pinned: str | None, endpoint: str
    ) -> None:
        """Pick the version, send the request to one of its replicas, answer with what it said."""
        started = time.perf_counter()
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        given = _header(raw, b"x-request-id")
        rid_text = request_id(given.decode("latin-1") if given else None)
        rid = rid_text.encode("ascii")
        method = scope["method"]
        allowed = _METHOD[endpoint]
        if method != allowed and not (method == "HEAD" and allowed == "GET"):
            await _error(send, 405, f"{method} is not allowed here", [(b"allow", allowed.encode())])
            return

        def header(key: str) -> str | None:
            value = _header(raw, key.encode())
            return value.decode("latin-1") if value else None

        try:  # this request's snapshot of the table, whatever reloads meanwhile
            choice = choose(self.live, name, pinned, header, endpoint, self.rng, self.metrics, started)
        except NotRouted as refused:
            ours = [(b"x-request-id", rid)] + ([(b"x-model-name", name.encode())] if refused.version else [])
            extra = {"version": refused.version} if refused.version else {}
            await _error(send, 404, refused.message, ours, model=name, **extra)
            return
        model, route = choice.model, choice.route
        ours = [
            (b"x-request-id", rid),
            (b"x-model-name", name.encode()),
            (b"x-model-version", route.version.encode()),
            (b"x-model-digest", route.digest.encode()),
        ]
        status, replica, answer = 500, None, b""
        upstream_json_length: str | None = None  # the answer's Inference-Header-Content-Length
        body: bytes | None = None
        headers: list[tuple[bytes, bytes]] = []
        try:
            if method == "POST":
                limit = self.settings.max_body_bytes
                read = await _read_body(receive, _header(raw, b"content-length"), limit)
                if read is None:  # the caller hung up: nobody to answer
                    status = 499
                    return
                if isinstance(read, _TooLarge):
                    status = 413
                    await _error(send, status, read.message, ours, model=name, version=route.version)
                    return
                body = read
            path = f"/v2/models/{name}/versions/{route.version}{_SUFFIX[endpoint]}"
            headers = [(k, v) for k, v in raw if k not in _NOT_FORWARDED]
            headers.append((b"x-request-id", rid))
            try:
                upstream, replica = await self._send(name, route, path, body, headers)
            except _Failure as failure:
                status = failure.status
                await _error(send, status, failure.message, ours, model=name, version=route.version)
                return
            status, answer = upstream.status, upstream.body
            upstream_json_length = upstream.header(b"inference-header-content-length")
            passed = [(k, v) for k, v in ((k.lower(), v) for k, v in upstream.headers) if k not in _NOT_PASSED_BACK]
            await _answer(send, status, upstream.body, passed + ours)
        finally:
            record(choice, rid_text, status, replica, self.metrics, self.log,
                   lambda: prediction_of(answer, upstream_json_length))  # fmt: skip
            copied = endpoint == "infer" and model.mirror is not None and choice.assignment.how != "pinned"
            if copied and status == 200 and body is not None:
                mirrored = (choice.live.application, model, route.version, rid, body, headers, answer)
                self.mirror.offer(*mirrored, upstream_json_length)

    async def _send(
        self, model: str, route: TableRoute, path: str, body: bytes | None, headers: list[tuple[bytes, bytes]]
    ) -> tuple[UpstreamResponse, str]:
        """Send to the version's replicas in turn, per the retry policy in the module docstring."""
        client = self._client
        if client is None:
            raise _Failure(503, "the router is not started")
        version = route.version
        method = "GET" if body is None else "POST"
        tried: list[tuple[str, str]] = []  # (kind, what happened)
        attempts = 0
        for url in self.pool.order(model, version, route.replicas):
            for fresh_try in (False, True):
                if attempts:
                    self.metrics.retries.labels(model, version).inc()
                attempts += 1
                try:
                    upstream = await client.request(url, method, path, headers, body, fresh=fresh_try)
                except (ConnectFailed, ConnectTimeout) as e:
                    self.eject(model, version, url, "connect", e)
                    tried.append(("connect", f"{url}: {_reason(e)}"))
                    break
                except Dropped as e:
                    if not fresh_try:
                        self.metrics.upstream_errors.labels(model, version, "dropped").inc()
                        continue  # perhaps a stale keep-alive connection: once more on a new one
                    self.eject(model, version, url, "dropped", e)
                    tried.append(("dropped", f"{url}: connection dropped: {_reason(e)}"))
                    break
                except PoolTimeout:
                    self.metrics.upstream_errors.labels(model, version, "timeout").inc()
                    message = f"the router has no free connection to model '{model}' version {version}"
                    raise _Failure(503, message) from None
                except ReadTimeout:
                    self.metrics.upstream_errors.labels(model, version, "timeout").inc()
                    raise _Failure(504, f"model '{model}' version {version} did not answer in time ({url})") from None
                except UpstreamError as e:
                    self.metrics.upstream_errors.labels(model, version, "other").inc()
                    raise _Failure(502, f"model '{model}' version {version}: {url}: {_reason(e)}") from None
                said = upstream.header(b"x-model-version"), upstream.header(b"x-model-digest")
                mismatch = identity_mismatch(*said, version, route.digest)
                if mismatch:
                    self.eject(model, version, url, "identity", mismatch)
                    tried.append(("identity", f"{url}: {mismatch}"))
                    break
                self.pool.succeeded(url)
                return upstream, url
        if not route.replicas:
            raise _Failure(503, f"model '{model}' version {version} has no replicas in the routing table")
        detail = "; ".join(text for _, text in tried)
        if all(kind == "identity" for kind, _ in tried):
            raise _Failure(502, f"no replica of model '{model}' version {version} serves {route.digest} ({detail})")
        raise _Failure(503, f"no replica of model '{model}' version {version} is reachable ({detail})")

    def eject(self, model: str, version: str, url: str, kind: str, reason: object) -> None:
        self.metrics.upstream_errors.labels(model, version, kind).inc()
        if self.pool.is_up(url):
            log.warning(
                "replica %s of %s %s is unusable (%s: %s); skipped for %.1f s",
                url,
                model,
                version,
                kind,
                reason,
                self.pool.eject_seconds,
            )
        self.pool.failed(url)


@dataclass(frozen=True)
class _TooLarge:
    message: str


async def _read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes | _TooLarge | None:
    """The whole request body; None when the caller disconnected first, ``_TooLarge`` (read no
    further) when it is over ``limit`` bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _TooLarge(f"the request body is {int(declared):,} bytes, over the router's limit of {limit:,}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return _TooLarge(f"the request body is over the router's limit of {limit:,} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _json(content: dict[str, Any]) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]], **fields: str) -> None:
    await _answer(send, status, _json({"error": message, **fields}), [*headers, _JSON])
