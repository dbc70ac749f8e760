"""The replica: one model version served over the Open Inference Protocol v2 (REST).

``create_app`` builds a Starlette app around a ``LoadedModel`` (see ``replica_model.load_verified``:
the bytes are verified before the app exists, so a listening replica is a verified one); ``serve``
runs it with uvicorn on a socket bound before the first line is printed, and drains in-flight
requests on SIGTERM or SIGINT.

Routes: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{name}[/versions/{v}]``
(metadata), ``.../ready``, ``POST .../infer`` (JSON, or the binary tensor data extension: see
``catalog.serving.oip``) and ``GET /metrics`` (Prometheus). A path naming another model or version
is answered 404, and so is Triton's own ``.../config``, with a message naming the metadata endpoint. Every response carries ``x-model-name``,
``x-model-version`` and ``x-model-digest``.

With ``sagemaker=True`` (``modelcat serve``) the app also speaks the SageMaker hosting contract:
``GET /ping`` and ``POST /invocations``, the latter the OIP v2 infer request for the one model served.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.errors import InvalidRequest, ModelcatError
from catalog.serving import DEFAULT_MAX_BODY_BYTES, listen
from catalog.serving.oip_answer import encode_body
from catalog.serving.oip_json import parse_request_bounded
from catalog.serving.replica_model import LoadedModel, new_run_options
from catalog.serving.signature import signature_info

if TYPE_CHECKING:
    from catalog.signing.verify import Verified

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "PLATFORM",
    "SERVER_NAME",
    "ReplicaIdentity",
    "create_app",
    "serve",
    "server_version",
]

PLATFORM = "onnxruntime_onnx"
SERVER_NAME = "modelcat-replica"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INFERENCE_HEADER = "inference-header-content-length"  # the binary extension's: the JSON part's length
log = logging.getLogger("catalog.serving.replica")


@dataclass(frozen=True, slots=True)
class ReplicaIdentity:
    """Which model version a replica serves, and the digest of the bytes it verified."""

    model: str
    version: str
    digest: str

    def headers(self) -> dict[str, str]:
        return {"x-model-name": self.model, "x-model-version": self.version, "x-model-digest": self.digest}


class ReplicaMetrics:
    """Per-app Prometheus metrics, every series labelled with model and version."""

    def __init__(self, identity: ReplicaIdentity) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model", "version", "route", "code"]
        self.requests = Counter("modelcat_replica_requests", "HTTP requests answered", labels, registry=self.registry)
        self.errors = Counter(
            "modelcat_replica_request_errors",
            "HTTP requests answered with a 4xx or 5xx",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelcat_replica_request_duration_seconds",
            "Time from request to the end of the response",
            ["model", "version", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "modelcat_replica_inferences_in_flight", "Inference requests being served", ["model", "version"],
            registry=self.registry,
        )  # fmt: skip
        info = Gauge("modelcat_replica_info", "The served model version and its digest", ["model", "version", "digest"],
                     registry=self.registry)  # fmt: skip
        info.labels(identity.model, identity.version, identity.digest).set(1)
        self.base = (identity.model, identity.version)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(*self.base, route, str(status)).inc()
        if status >= 400:
            self.errors.labels(*self.base, route, str(status)).inc()
        self.latency.labels(*self.base, route).observe(seconds)


class _Observe:
    """ASGI middleware: identity headers on every response, and the request metrics."""

    def __init__(self, app: ASGIApp, identity: ReplicaIdentity, metrics: ReplicaMetrics) -> None:
        self.app, self.metrics = app, metrics
        self.extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in identity.headers().items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for key, value in self.extra:
                    headers.append(key.decode("latin-1"), value.decode("latin-1"))
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            # the router records the matched endpoint in the scope; its name labels the series
            route = getattr(scope.get("endpoint"), "__name__", "unmatched").strip("_")
            self.metrics.observe(route, status, time.perf_counter() - started)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def server_version() -> str:
    try:
        return package_version("modelcat")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0"


def create_app(
    model: LoadedModel,
    name: str,
    version: str,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    sagemaker: bool = False,
    signed_by: Verified | None = None,
) -> Starlette:
    """An ASGI app serving ``model`` as ``name`` ``version`` (and nothing else).

    ``sagemaker`` adds ``GET /ping`` and ``POST /invocations``, SageMaker's container contract.
    They are off unless asked for (``modelcat serve`` asks) rather than always on: the replica's API
    elsewhere (local, kubernetes, behind the router) is the Open Inference Protocol, whose paths name
    the model and version; ``/invocations`` names neither, so on those replicas it would be a second,
    unversioned way in that no caller there uses and the conformance tests do not describe. There a
    stray SageMaker-style call gets a 404 instead. ``/invocations`` is the ``/infer`` handler minus
    the path check, so the two cannot drift: same parsing, limits, errors and metrics.

    ``/ping`` answers 200 exactly when ``/v2/health/ready`` does. The app is only built once the bytes
    are verified and the session loaded, so before that nothing listens and SageMaker's health check
    fails on the refused connection; there is no listening, not-ready state to answer 503 from.

    ``signed_by`` is who signed the bytes, checked before (``serving.signature``): the model's
    metadata carries it as the parameter ``model_signature`` (absent: unsigned).
    """
    identity = ReplicaIdentity(name, version, model.digest)
    metrics = ReplicaMetrics(identity)
    server = {"name": SERVER_NAME, "version": server_version(), "extensions": ["binary_tensor_data"]}
    metadata = {
        "name": name,
        "versions": [version],
        "platform": PLATFORM,
        "inputs": [m.as_metadata() for m in model.inputs],
        "outputs": [m.as_metadata() for m in model.outputs],
        "parameters": {"model_name": name, "model_version": version, "model_digest": model.digest}
        | ({"model_signature": signature_info(signed_by)} if signed_by else {}),
    }

    def not_served(request: Request) -> JSONResponse | None:
        asked = request.path_params["model_name"]
        if asked != name:
            return _error(404, f"model {asked!r} is not served here; this replica serves {name} {version}")
        asked_version = request.path_params.get("model_version", version)
        if asked_version != version:
            return _error(
                404, f"model {name} version {asked_version!r} is not served here; this replica serves {version}"
            )
        return None

    async def server_metadata(request: Request) -> Response:
        return JSONResponse(server)

    async def health_live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def health_ready(request: Request) -> Response:
        return JSONResponse({"ready": True})  # the app only exists once the model is verified and loaded

    async def model_metadata(request: Request) -> Response:
        return not_served(request) or JSONResponse(metadata)

    async def model_ready(request: Request) -> Response:
        return not_served(request) or JSONResponse({"name": name, "version": version, "ready": True})

    async def model_config(request: Request) -> Response:
        return not_served(request) or _error(
            404,
            f"model configuration is Triton's own endpoint, not the Open Inference Protocol's; "
            f"GET /v2/models/{name}/versions/{version} answers the model's metadata",
        )

    def run_inference(body: bytes | bytearray, header_length: str | None, run_options: Any) -> Response:
        parsed = parse_request_bounded(body, model.inputs, model.outputs, header_length)
        outputs = model.run(parsed.inputs, parsed.outputs, run_options)
        content, json_length = encode_body(name, version, outputs, parsed.id, parsed.binary_outputs)
        if json_length is None:
            return Response(content, media_type="application/json")
        headers = {INFERENCE_HEADER: str(json_length)}
        return Response(content, media_type="application/octet-stream", headers=headers)

    async def infer(request: Request) -> Response:
        return not_served(request) or await answer_inference(request)

    async def invocations(request: Request) -> Response:  # SageMaker's path: the one model served here
        return await answer_inference(request)

    async def ping(request: Request) -> Response:  # SageMaker's health check
        return Response(status_code=200)  # ready as /v2/health/ready is: see the docstring

    async def answer_inference(request: Request) -> Response:
        metrics.in_flight.labels(name, version).inc()
        run_options = new_run_options()
        try:
            body = _decoded(await _read_body(request, max_body_bytes), request.headers, max_body_bytes)
            header_length = request.headers.get(INFERENCE_HEADER)
            return await run_in_threadpool(run_inference, body, header_length, run_options)
        except asyncio.CancelledError:
            # uvicorn cancels what is still running when the drain window closes: stop the model
            # run too, or its thread would keep the process alive until it finished
            run_options.terminate = True
            raise
        except ModelcatError as e:
            return _error(getattr(e, "status_code", 500), str(e))
        except ClientDisconnect:  # nobody is left to answer
            return Response(status_code=400)
        except Exception as e:  # an answer, not a dropped connection; the traceback goes to the log
            log.exception("inference failed")
            return _error(500, f"internal error: {type(e).__name__}: {e}")
        finally:
            metrics.in_flight.labels(name, version).dec()

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"no such endpoint: {request.url.path}", 405: f"{request.method} is not allowed here"}
        return JSONResponse(
            {"error": message.get(exc.status_code, exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    model_path = "/v2/models/{model_name}"
    version_path = model_path + "/versions/{model_version}"
    routes = [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/", server_metadata, methods=["GET"]),
        Route("/v2/health/live", health_live, methods=["GET"]),
        Route("/v2/health/ready", health_ready, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    for base in (model_path, version_path):
        routes += [
            Route(base, model_metadata, methods=["GET"]),
            Route(base + "/ready", model_ready, methods=["GET"]),
            Route(base + "/infer", infer, methods=["POST"]),
            Route(base + "/config", model_config, methods=["GET"]),
        ]
    if sagemaker:
        routes += [Route("/ping", ping, methods=["GET"]), Route("/invocations", invocations, methods=["POST"])]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Observe, identity=identity, metrics=metrics)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.metrics = metrics  # a gRPC server beside the app counts its calls in the same series
    return app


class _TooLarge(InvalidRequest):
    status_code = 413


class _Unsupported(InvalidRequest):
    status_code = 415


async def _read_body(request: Request, limit: int) -> bytearray:
    """The body, read into one buffer: sized by Content-Length when given, so a large request costs
    its size once (a list of chunks joined at the end would cost it twice)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(f"the request body is {int(declared):,} bytes, over the limit of {limit:,}")
    if declared.isdigit():
        body = bytearray(int(declared))
        view, size = memoryview(body), 0
        async for chunk in request.stream():
            if size + len(chunk) > len(body):  # the HTTP parser frames the body by its length: cannot happen
                raise InvalidRequest("the request body is longer than its Content-Length")
            view[size : size + len(chunk)] = chunk
            size += len(chunk)
        return body
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise _TooLarge(f"the request body is over the limit of {limit:,} bytes")
        body += chunk
    return body


def _decoded(body: bytearray, headers: Mapping[str, str], limit: int) -> bytes | bytearray:
    """The body as sent before its Content-Encoding: gzip and deflate (zlib), as tritonclient's
    ``request_compression_algorithm`` sends them, inflated to at most ``limit`` bytes."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    if encoding not in ("gzip", "deflate"):
        raise _Unsupported(f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or no encoding")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise InvalidRequest(f"the request body is not valid {encoding} data: {e}") from None
    if len(plain) > limit:
        raise _TooLarge(f"the request body inflates to over the limit of {limit:,} bytes")
    if not inflater.eof:
        raise InvalidRequest(f"the request body's {encoding} data is cut short")
    return plain


def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    drain_seconds: float = 5.0,
    on_listening: Callable[[str], None] | None = None,
) -> list[int]:
    """Serve ``app`` until SIGTERM or SIGINT, then drain in-flight requests for up to
    ``drain_seconds``. Port 0 picks a free port; ``on_listening`` gets the URL once requests are
    accepted. Returns the signals that stopped it."""
    return listen.run(app, listen.bind(host, port), drain_seconds=drain_seconds, on_listening=on_listening)
