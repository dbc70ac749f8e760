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
- ``GET /routing``: the table in force (versions, weights, buckets, digests, replicas and whether
  each is up), its file, sha256, generation and the last reload error.
- ``GET /metrics``: Prometheus text (``catalog.serving.router_telemetry``).

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
unusable (502 when no replica of the version serves the right bytes).

Every routed response carries ``x-request-id`` (the caller's when it is 1-128 printable ASCII
characters, else a new one), ``x-model-name``, and, once a version is chosen, ``x-model-version``
and ``x-model-digest`` from the table.

The table file is polled (``router_state.TableWatcher``); a new table is swapped in whole, between
requests, and a request in flight finishes with the table it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from catalog.domain.routing import Assignment, RandomSource, key_hash, pick_version
from catalog.errors import ModelcatError
from catalog.serving.router_state import LiveTable, ReplicaPool, TableWatcher, compile_table, describe
from catalog.serving.router_telemetry import AssignmentLog, RouterMetrics, utc_now
from catalog.serving.table import LoadedTable, TableRoute, load_table

__all__ = ["Router", "RouterSettings"]

log = logging.getLogger("catalog.serving.router")

# Headers that belong to one connection, or that we recompute; never copied across the proxy.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",  # httpx hands us decoded bytes
        "date",
        "server",
    }
)
_SUFFIX = {"infer": "/infer", "metadata": "", "ready": "/ready"}


def _spare_httpcore_an_import_per_request() -> None:
    """httpcore 1.0 runs ``import sniffio`` several times per pooled request; when sniffio is not
    installed (recent anyio no longer pulls it in) every failed import searches sys.path again,
    which cost the router here on the order of a millisecond of CPU per request. Recording the
    absence makes the import fail at once, as it would anyway. (A no-op once sniffio is a
    dependency.)"""
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


_spare_httpcore_an_import_per_request()


@dataclass(frozen=True)
class RouterSettings:
    table_path: Path
    assignment_log: Path | None = None
    poll_interval: float = 0.25
    connect_timeout: float = 2.0
    timeout: float = 30.0
    eject_seconds: float = 2.0
    max_connections: int = 512
    rng: RandomSource | None = None


class _Failure(Exception):
    """No usable answer from any replica of the version: the status and message to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _request_id(given: str | None) -> str:
    if given and len(given) <= 128 and all("!" <= c <= "~" for c in given):
        return given
    return uuid.uuid4().hex


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."


class Router:
    """One application's router: the table in force, the replica client, metrics and the log.

    Construction loads the table (raising ``RoutingTableInvalid``/``RoutingTableUnreadable``) and
    opens the assignment log; ``app`` is the ASGI application.
    """

    def __init__(self, settings: RouterSettings) -> None:
        self.settings = settings
        self.metrics = RouterMetrics()
        self.pool = ReplicaPool(eject_seconds=settings.eject_seconds)
        self._rng = settings.rng or random.Random()
        self.last_error: str | None = None
        # The watcher notes the file's identity before the first load: a change racing it is seen.
        self._watcher = TableWatcher(settings.table_path, self.install, self.reload_failed, settings.poll_interval)
        self.live: LiveTable = self._compiled(load_table(settings.table_path), 1)
        self.metrics.reloads.labels("ok").inc()
        self._client: httpx.AsyncClient | None = None
        self._log = AssignmentLog(settings.assignment_log, self.metrics) if settings.assignment_log else None
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)

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
        splits = "; ".join(
            f"{m.name}: " + ", ".join(f"{r.version}={r.weight}%" for r in m.routes.values())
            for m in self.live.models.values()
        )
        log.info("routing table reloaded (generation %d): %s", self.live.generation, splits)

    def reload_failed(self, error: ModelcatError) -> None:
        self.last_error = str(error)
        self.metrics.reloads.labels("error").inc()

    # -- lifecycle --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        s = self.settings
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(s.timeout, connect=s.connect_timeout, pool=s.connect_timeout),
            limits=httpx.Limits(
                max_connections=s.max_connections, max_keepalive_connections=s.max_connections, keepalive_expiry=4.0
            ),
            trust_env=False,  # a proxy from the environment must never sit between router and replicas
            follow_redirects=False,
        )
        watcher = asyncio.create_task(self._watcher.run(), name="table-watcher")
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self._client.aclose()
            self.close()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    # -- endpoints --------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        m, v = "/v2/models/{model}", "/v2/models/{model}/versions/{version}"
        return [
            Route(f"{m}/infer", self._infer, methods=["POST"]),
            Route(f"{v}/infer", self._infer, methods=["POST"]),
            Route(m, self._metadata, methods=["GET"]),
            Route(v, self._metadata, methods=["GET"]),
            Route(f"{m}/ready", self._model_ready, methods=["GET"]),
            Route(f"{v}/ready", self._model_ready, methods=["GET"]),
            Route("/v2/health/live", self._live, methods=["GET"]),
            Route("/v2/health/ready", self._ready, methods=["GET"]),
            Route("/v2", self._server_metadata, methods=["GET"]),
            Route("/routing", self._routing, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
        ]

    async def _infer(self, request: Request) -> Response:
        return await self._route(request, "infer")

    async def _metadata(self, request: Request) -> Response:
        return await self._route(request, "metadata")

    async def _model_ready(self, request: Request) -> Response:
        return await self._route(request, "ready")

    async def _live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def _ready(self, request: Request) -> Response:
        return JSONResponse({"ready": True, "application": self.live.application, "generation": self.live.generation})

    async def _server_metadata(self, request: Request) -> Response:
        return JSONResponse({"name": "modelcat-router", "version": "1", "extensions": []})

    async def _routing(self, request: Request) -> Response:
        return JSONResponse(describe(self.live, self.pool, self.last_error))

    async def _metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- routing ----------------------------------------------------------------------------------

    async def _route(self, request: Request, endpoint: str) -> Response:
        started = time.perf_counter()
        rid = _request_id(request.headers.get("x-request-id"))
        live = self.live  # this request's snapshot, whatever reloads meanwhile
        name = request.path_params["model"]
        model = live.models.get(name)
        if model is None:
            self.metrics.unrouted.inc()
            routed = ", ".join(sorted(live.models))
            message = f"model '{name}' is not routed by application '{live.application}' (routed: {routed})"
            return _error(404, message, {"x-request-id": rid}, model=name)
        key: str | None = None
        pinned = request.path_params.get("version")
        if pinned is not None:
            if pinned not in model.routes:
                self.metrics.requests.labels(name, "(unknown)", endpoint, "404").inc()
                known = ", ".join(model.routes)
                message = f"model '{name}' has no version {pinned} in the routing table (routed: {known})"
                return _error(404, message, {"x-request-id": rid, "x-model-name": name}, model=name, version=pinned)
            assignment = Assignment(pinned, None, "pinned")
        else:
            key = (request.headers.get(model.sticky_key) or None) if model.sticky_key else None
            if endpoint == "infer" or key:
                assignment = pick_version(model.slots, key, salt=model.name, rng=self._rng)
            else:
                assignment = Assignment(model.primary, None, "random")
        route = model.routes[assignment.version]
        ours = {
            "x-request-id": rid,
            "x-model-name": name,
            "x-model-version": route.version,
            "x-model-digest": route.digest,
        }
        if endpoint == "infer":
            self.metrics.assignments.labels(name, route.version, assignment.how).inc()
        status, replica = 500, None
        try:
            body = await request.body() if request.method == "POST" else None
            path = f"/v2/models/{name}/versions/{route.version}{_SUFFIX[endpoint]}"
            headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
            headers["x-request-id"] = rid
            try:
                upstream, replica = await self._send(request.method, name, route, path, body, headers)
            except _Failure as failure:
                status = failure.status
                return _error(status, failure.message, ours, model=name, version=route.version)
            status = upstream.status_code
            passed = {k: v for k, v in upstream.headers.items() if k not in _HOP_BY_HOP}
            return Response(upstream.content, status_code=status, headers=passed | ours)
        finally:
            self.metrics.requests.labels(name, route.version, endpoint, str(status)).inc()
            if endpoint == "infer":
                elapsed = time.perf_counter() - started
                self.metrics.latency.labels(name, route.version).observe(elapsed)
                if self._log is not None:
                    self._log.write(
                        {
                            "time": utc_now(),
                            "request_id": rid,
                            "application": live.application,
                            "model": name,
                            "version": route.version,
                            "digest": route.digest,
                            "assignment": assignment.how,
                            "bucket": assignment.bucket if assignment.how == "sticky" else None,
                            "key_hash": key_hash(key) if key else None,
                            "status": status,
                            "replica": replica,
                            "latency_ms": round(elapsed * 1000, 3),
                            "table": live.loaded.sha256,
                        }
                    )

    async def _send(
        self, method: str, model: str, route: TableRoute, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[httpx.Response, str]:
        """Send to the version's replicas in turn, per the retry policy in the module docstring."""
        client = self._client
        if client is None:
            raise _Failure(503, "the router is not started")
        version = route.version
        tried: list[tuple[str, str]] = []  # (kind, what happened)
        attempts = 0
        for url in self.pool.order(model, version, route.replicas):
            for fresh_try in (False, True):
                if attempts:
                    self.metrics.retries.labels(model, version).inc()
                attempts += 1
                try:
                    upstream = await client.request(method, url + path, content=body, headers=headers)
                except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                    self._eject(model, version, url, "connect", e)
                    tried.append(("connect", f"{url}: {_reason(e)}"))
                    break
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
                    if not fresh_try:
                        self.metrics.upstream_errors.labels(model, version, "dropped").inc()
                        continue  # perhaps a stale keep-alive connection: once more on a new one
                    self._eject(model, version, url, "dropped", e)
                    tried.append(("dropped", f"{url}: connection dropped: {_reason(e)}"))
                    break
                except httpx.PoolTimeout:
                    self.metrics.upstream_errors.labels(model, version, "timeout").inc()
                    message = f"the router has no free connection to model '{model}' version {version}"
                    raise _Failure(503, message) from None
                except httpx.TimeoutException:
                    self.metrics.upstream_errors.labels(model, version, "timeout").inc()
                    raise _Failure(504, f"model '{model}' version {version} did not answer in time ({url})") from None
                except httpx.HTTPError as e:
                    self.metrics.upstream_errors.labels(model, version, "other").inc()
                    raise _Failure(502, f"model '{model}' version {version}: {url}: {_reason(e)}") from None
                mismatch = _identity_mismatch(upstream, version, route.digest)
                if mismatch:
                    self._eject(model, version, url, "identity", mismatch)
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

    def _eject(self, model: str, version: str, url: str, kind: str, reason: object) -> None:
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


def _identity_mismatch(upstream: httpx.Response, version: str, digest: str) -> str:
    said_version = upstream.headers.get("x-model-version")
    said_digest = upstream.headers.get("x-model-digest")
    if said_version is not None and said_version != version:
        return f"serves version {said_version}, not {version}"
    if said_digest is not None and said_digest != digest:
        return f"serves {said_digest}, not {digest}"
    return ""


def _error(status: int, message: str, headers: dict[str, str], **fields: str) -> Response:
    return JSONResponse({"error": message, **fields}, status_code=status, headers=headers)
