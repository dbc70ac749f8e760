"""The router over gRPC: ``inference.GRPCInferenceService`` (catalog/serving/oip_grpc/inference.proto)
on a port of its own, routing like the HTTP side and sharing its table, replica pool, metrics and
assignment log (``catalog.serving.router_choice``).

- ``ModelInfer``: the version is the request's ``model_version`` when it names one (pinned: any routed
  version, weight 0 included), else picked by the model's sticky key, read from the request's metadata
  (the sticky header's name, lowercase), else at random by weight. The message goes to a replica of
  that version over gRPC (the table's ``grpc_replicas``) as it came: the router reads only its
  ``model_name`` and ``model_version`` fields off the wire and never decodes tensors; the replica's
  answer comes back as it was sent. Logged in the assignment log as HTTP requests are, with the
  HTTP status the gRPC code stands for (OK 200, INVALID_ARGUMENT 400, NOT_FOUND 404, ...) and the
  replica as ``grpc://host:port``.
- ``ModelMetadata``, ``ModelReady``: forwarded the same way (by the sticky key when given, else to
  the version with the largest weight).
- ``ServerLive``, ``ServerReady``, ``ServerMetadata``: the router's own answers.

Every answer's trailing metadata carries ``x-request-id`` (the caller's metadata of that name when it
is 1-128 printable ASCII characters, else a new one; sent on to the replica too) and, once a version is
chosen, ``x-model-name``, ``x-model-version`` and ``x-model-digest`` from the table. The caller's other
metadata goes to the replica.

Refusals: a model the table does not route, or a pinned version it does not, is ``NOT_FOUND``; a
message over ``max_body_bytes`` ``INVALID_ARGUMENT`` naming both sizes (past twice the limit gRPC
drops it unread: ``RESOURCE_EXHAUSTED``); no reachable replica of the version (or none with a gRPC
address) ``UNAVAILABLE`` naming the model and version; a replica that does not answer within the
timeout ``DEADLINE_EXCEEDED``. A replica's own error is passed through, code and message. The retry
policy is the HTTP side's: only replicas of the assigned version, a replica that cannot be reached
is tried once more, then skipped (ejected for a while) for the next one; a replica whose trailing
metadata names another version or digest than the table's is not used. In a shadow step a share of
the ModelInfer requests answered OK is copied to the mirrored version's gRPC replicas, as HTTP's are
(``catalog.serving.mirror``), with the metadata ``x-modelcat-shadow: 1``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from catalog.serving import listen
from catalog.serving.oip_grpc import SERVICE, wire
from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.router_choice import NotRouted, choose, identity_mismatch, record, request_id
from catalog.serving.router_state import LiveTable
from catalog.serving.router_telemetry import finite_number, first_binary_element
from catalog.serving.table import TableRoute

__all__ = ["GrpcRouter", "model_target", "start_router_grpc"]

log = logging.getLogger("catalog.serving.router")

# the HTTP status each gRPC code stands for in the metrics and the assignment log
_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
# metadata the router sets itself or that belongs to the caller's connection
_NOT_FORWARDED = frozenset({"x-request-id", "user-agent", "te", "content-type", "grpc-accept-encoding"})


def _channel_options(connect_timeout: float) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", -1),
        ("grpc.max_send_message_length", -1),
        ("grpc.enable_retries", 0),  # the router retries by its own policy
        ("grpc.initial_reconnect_backoff_ms", 100),  # a replica restarted is reached again soon
        ("grpc.max_reconnect_backoff_ms", 2000),
        # gRPC's name for the connect timeout: how long a connection attempt may take
        ("grpc.min_reconnect_backoff_ms", max(1, int(connect_timeout * 1000))),
    ]


_RETIRED_CLOSE_SECONDS = 60.0  # a channel no table names any more is closed this long after


class _Refused(Exception):
    """The answer is an error: its code, message and the HTTP status it stands for."""

    def __init__(self, code: grpc.StatusCode, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status or _STATUS.get(code, 500)


def model_target(message: bytes) -> tuple[str, str]:
    """``(model_name, model_version)`` of a serialized ModelInferRequest, ModelMetadataRequest or
    ModelReadyRequest (fields 1 and 2 in each), read off the wire without parsing the rest: the
    top-level fields are walked by their lengths (the last occurrence of a field wins, as in
    protobuf). Raises ValueError on a message that is not well-formed."""
    found = [b"", b""]
    for number, kind, start, end in wire.fields(message):
        if number in (1, 2) and kind == wire.LENGTH_DELIMITED:
            found[number - 1] = message[start:end]
    try:
        return found[0].decode("utf-8"), found[1].decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the model name or version is not UTF-8") from None


def prediction_of_message(message: bytes) -> float | None:
    """The first element of the first output of a serialized ModelInferResponse (raw or typed
    contents), or None when there is none or it is not a finite number."""
    try:
        response = pb.ModelInferResponse.FromString(message)
    except DecodeError:  # a replica's answer that does not parse: no prediction, not a failed request
        return None
    if not response.outputs:
        return None
    first = response.outputs[0]
    if response.raw_output_contents:
        return finite_number(first_binary_element(response.raw_output_contents[0], first.datatype))
    values = [value for field, value in first.contents.ListFields() if field.name != "bytes_contents"]
    return finite_number(values[0][0]) if values and values[0] else None


class _Channels:
    """One channel per replica address, made on first use; those the table no longer names are
    closed a while after (a call in flight on one finishes first)."""

    def __init__(self, connect_timeout: float) -> None:
        self._options = _channel_options(connect_timeout)
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, str], grpc.UnaryUnaryMultiCallable[bytes, bytes]] = {}
        self._channels: dict[str, grpc.Channel] = {}
        self._retired: list[tuple[float, grpc.Channel]] = []
        self._generation = 0

    def call(self, address: str, method: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
        found = self._calls.get((address, method))
        if found is not None:
            return found
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = self._channels[address] = grpc.insecure_channel(address, options=self._options)
            # no (de)serializers: bytes in, bytes out
            found = self._calls[(address, method)] = channel.unary_unary(f"/{SERVICE}/{method}")
            return found

    def retain(self, live: LiveTable) -> None:
        """After a table change: retire the channels to addresses the table ``live`` does not name."""
        if live.generation == self._generation:
            return
        addresses = {a for m in live.models.values() for r in m.routes.values() for a in r.grpc_replicas or ()}
        now = time.monotonic()
        with self._lock:
            self._generation = live.generation
            for address in [a for a in self._channels if a not in addresses]:
                self._retired.append((now + _RETIRED_CLOSE_SECONDS, self._channels.pop(address)))
                for key in [k for k in self._calls if k[0] == address]:
                    del self._calls[key]
            due = [channel for when, channel in self._retired if when <= now]
            self._retired = [(when, channel) for when, channel in self._retired if when > now]
        for channel in due:
            channel.close()

    def close(self) -> None:
        with self._lock:
            channels = list(self._channels.values()) + [channel for _, channel in self._retired]
            self._channels, self._calls, self._retired = {}, {}, []
        for channel in channels:
            channel.close()


class GrpcRouter:
    """The gRPC side of ``router`` (a ``catalog.serving.router.Router``): its table, pool, metrics and log."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.limit: int = router.settings.max_body_bytes
        self.timeout: float = router.settings.timeout
        self.channels = _Channels(router.settings.connect_timeout)
        self._own = {
            "ServerLive": pb.ServerLiveResponse(live=True).SerializeToString(),
            "ServerReady": pb.ServerReadyResponse(ready=True).SerializeToString(),
            "ServerMetadata": pb.ServerMetadataResponse(name="modelcat-router", version="1").SerializeToString(),
        }

    def handler(self) -> grpc.GenericRpcHandler:
        def own(answer: bytes) -> grpc.RpcMethodHandler[bytes, bytes]:
            return grpc.unary_unary_rpc_method_handler(lambda request, context: answer)

        def forwarded(method: str, endpoint: str) -> grpc.RpcMethodHandler[bytes, bytes]:
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: self._forward(method, endpoint, request, context)
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {name: own(answer) for name, answer in self._own.items()}
            | {
                "ModelInfer": forwarded("ModelInfer", "infer"),
                "ModelMetadata": forwarded("ModelMetadata", "metadata"),
                "ModelReady": forwarded("ModelReady", "ready"),
            },
        )

    def _forward(self, method: str, endpoint: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        started = time.perf_counter()
        metadata = context.invocation_metadata()
        given = dict(metadata)

        def text(key: str) -> str | None:  # a text metadata value (a -bin key's are bytes)
            value = given.get(key)
            return value if isinstance(value, str) else None

        rid = request_id(text("x-request-id"))
        ours: tuple[tuple[str, str | bytes], ...] = (("x-request-id", rid),)
        try:
            name, version = model_target(request)
        except ValueError as e:
            context.set_trailing_metadata(ours)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a {method}Request message: {e}")
        router = self.router
        live = router.live  # this request's snapshot, whatever reloads meanwhile
        try:
            choice = choose(live, name, version or None, text, endpoint, router.rng, router.metrics, started)
        except NotRouted as refused:
            context.set_trailing_metadata(ours)
            context.abort(grpc.StatusCode.NOT_FOUND, refused.message)
        route = choice.route
        ours += (("x-model-name", name), ("x-model-version", route.version), ("x-model-digest", route.digest))
        context.set_trailing_metadata(ours)
        self.channels.retain(live)
        status, replica, answer = 500, None, b""
        try:
            if len(request) > self.limit:
                message = f"the request message is {len(request):,} bytes, over the router's limit of {self.limit:,}"
                raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, message, 413)
            passed = ((k, v) for k, v in metadata if k not in _NOT_FORWARDED and not k.startswith("grpc-"))
            forwarded = (*passed, ("x-request-id", rid))
            answer, replica = self._send(method, choice.model.name, route, request, forwarded)
            status = 200
            return answer
        except _Refused as refused:
            status = refused.status
            context.abort(refused.code, refused.message)
        finally:  # once the answer is sent (as HTTP's are recorded): its latency then, off the caller's time

            def recorded() -> None:
                record(choice, rid, status, replica, router.metrics, router.log, lambda: prediction_of_message(answer))
                if status == 200 and method == "ModelInfer" and choice.assignment.how != "pinned":
                    copy = (*forwarded, ("x-modelcat-shadow", "1"))
                    send = lambda mirrored: self._send(method, choice.model.name, mirrored, request, copy)[0]
                    router.mirror.offer_grpc(choice.live.application, choice.model, route.version, rid, send, answer)

            if not context.add_callback(recorded):
                recorded()

    def _send(
        self, method: str, model: str, route: TableRoute, request: bytes, metadata: tuple[tuple[str, str | bytes], ...]
    ) -> tuple[bytes, str]:
        """Send to the version's gRPC replicas in turn, per the retry policy in the module docstring."""
        router = self.router
        version = route.version
        addresses = route.grpc_replicas or []
        if not addresses:
            kind = "replicas" if not route.replicas else "gRPC replicas"
            message = f"model '{model}' version {version} has no {kind} in the routing table"
            raise _Refused(grpc.StatusCode.UNAVAILABLE, message)
        tried: list[tuple[str, str]] = []  # (kind, what happened)
        attempts = 0
        for address in router.pool.order(model, version, addresses):
            call = self.channels.call(address, method)
            for again in (False, True):
                if attempts:
                    router.metrics.retries.labels(model, version).inc()
                attempts += 1
                try:
                    answer, outcome = call.with_call(request, timeout=self.timeout, metadata=metadata)
                except grpc.RpcError as e:
                    code = e.code()
                    mismatch = identity_mismatch(*_said(e.trailing_metadata()), version, route.digest)
                    if mismatch:
                        router.eject(model, version, address, "identity", mismatch)
                        tried.append(("identity", f"{address}: {mismatch}"))
                        break
                    if code == grpc.StatusCode.UNAVAILABLE:
                        if not again:
                            router.metrics.upstream_errors.labels(model, version, "dropped").inc()
                            continue  # a connection lost or refused: once more, then the next replica
                        router.eject(model, version, address, "connect", e.details())
                        tried.append(("connect", f"{address}: {e.details()}"))
                        break
                    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                        router.metrics.upstream_errors.labels(model, version, "timeout").inc()
                        message = f"model '{model}' version {version} did not answer in time ({address})"
                        raise _Refused(code, message) from None
                    router.pool.succeeded(address)  # it answered: its own error, passed through
                    raise _Refused(code, e.details() or code.name) from None
                mismatch = identity_mismatch(*_said(outcome.trailing_metadata()), version, route.digest)
                if mismatch:
                    router.eject(model, version, address, "identity", mismatch)
                    tried.append(("identity", f"{address}: {mismatch}"))
                    break
                router.pool.succeeded(address)
                return answer, f"grpc://{address}"
        detail = "; ".join(text for _, text in tried)
        if all(kind == "identity" for kind, _ in tried):
            message = f"no replica of model '{model}' version {version} serves {route.digest} ({detail})"
            raise _Refused(grpc.StatusCode.UNAVAILABLE, message, 502)
        message = f"no replica of model '{model}' version {version} is reachable over gRPC ({detail})"
        raise _Refused(grpc.StatusCode.UNAVAILABLE, message)


def _said(metadata: Any) -> tuple[str | None, str | None]:
    """The version and digest a replica's trailing metadata names (None: not said)."""
    said = {k: v for k, v in metadata or () if isinstance(v, str)}
    return said.get("x-model-version"), said.get("x-model-digest")


def start_router_grpc(router: Any, host: str, port: int, workers: int = 64) -> tuple[grpc.Server, GrpcRouter, int]:
    """Serve ``router``'s gRPC side on ``host``:``port`` (0 picks a free port) in ``workers``
    threads; returns the server, the service and the port. A port in use is a UsageError."""
    service = GrpcRouter(router)
    server, bound = listen.start_grpc_server(
        service.handler(),
        host,
        port,
        max_message_bytes=router.settings.max_body_bytes,
        workers=workers,
        thread_name="grpc-router",
    )
    return server, service, bound
