"""The router's shadow step: copies of a share of a model's requests sent to a version that never answers them.

A model whose routing table block has a ``mirror`` (``catalog.serving.table``: ``version``,
``percent``, ``max_abs_difference``) is in a shadow step. For ``percent`` % of its routed inference
requests (pinned ones never), drawn from the request id (``mirror_draw``: the same id always
draws the same way, like a sticky key's bucket), the router sends a copy to one of the mirrored
version's replicas once the live answer (status 200) has been sent: the copy never delays the live
answer, and its own answer is never returned. Requests routed to the mirrored version itself are
not copied. At most ``max_in_flight`` copies are in flight; one more is dropped (and counted).

The copy is the caller's request, with the same request id and the header ``x-modelcat-shadow: 1``
(a replica's own counters can tell it apart); it goes to ``/v2/models/M/versions/V/infer`` with
the router's retry policy. It is not an assignment: no assignment log line, and none of the
router's request or latency metrics (the ones the telemetry reads for an A/B analysis) count it.

Its answer is compared with the live one, output by output (``compare_answers``): labels (integer,
bool and string datatypes) agree when equal, scores (float datatypes) when every element differs
by at most ``max_abs_difference``; a request agrees when every output of the live answer does.
Each copy is one line of the application's ``shadow`` log under the analytics folder
(``catalog.feedback.logs``)::

    {"time": "2026-12-06T20:10:00.123456Z", "request_id": "5f0c...", "application": "checkout",
     "model": "fraud-scorer", "live_version": "1.3.0", "mirrored_version": "1.4.0",
     "result": "agree", "agree": true, "outputs": {"probability": true}, "status": 200,
     "latency_ms": 3.2, "error": null}

Over gRPC (the router's ``--grpc-port``) a ModelInfer is copied the same way, after its answer, to
one of the mirrored version's ``grpc_replicas`` (the message as it came, with the metadata
``x-modelcat-shadow: 1``) in a thread of the mirror's own; the two ModelInfer responses' outputs
(raw or typed contents) are compared by the same rules and logged on the same lines.

``result`` is ``agree``, ``disagree``, ``error`` (the copy got no answer, an error status or one
that is not an inference response: ``agree`` null, ``error`` says why) or ``dropped`` (too many
copies in flight: not sent). Metrics: ``modelcat_shadow_requests_total{application, model, version,
result}`` (``version``: the mirrored one) and ``modelcat_shadow_request_duration_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from prometheus_client import CollectorRegistry, Counter, Histogram

from catalog.domain.routing import BUCKETS, bucket_of
from catalog.errors import InvalidRequest
from catalog.serving.oip import decode_binary_tensor
from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.router_state import CompiledModel
from catalog.serving.router_telemetry import LATENCY_BUCKETS, AssignmentLog, utc_now
from catalog.serving.table import TableRoute
from catalog.serving.upstream import UpstreamResponse

__all__ = [
    "MAX_IN_FLIGHT",
    "SHADOW_HEADER",
    "Mirror",
    "ShadowMetrics",
    "compare_answers",
    "compare_outputs",
    "grpc_outputs",
    "mirror_draw",
]

log = logging.getLogger("catalog.serving.router")

SHADOW_HEADER = b"x-modelcat-shadow"
MAX_IN_FLIGHT = 64  # copies in flight at once; more are dropped
SCORE_DATATYPES = frozenset({"FP16", "BF16", "FP32", "FP64"})
NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})  # float data's strings (catalog.serving.oip)

Headers = list[tuple[bytes, bytes]]
Send = Callable[[str, TableRoute, str, bytes, Headers], Awaitable[tuple[UpstreamResponse, str]]]


def mirror_draw(request_id: str, model: str, percent: int) -> bool:
    """Whether the request ``request_id`` of ``model`` is copied when ``percent`` % are: its bucket
    (``catalog.domain.routing.bucket_of``, salted apart from the sticky buckets) is below ``percent``."""
    return bucket_of(request_id, salt=f"mirror/{model}") < min(percent, BUCKETS)


def _flat(data: Any) -> list[Any]:
    """A tensor's data, nested lists flattened in row-major order."""
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flat(item))
    return flat


def _outputs(body: bytes, json_length: str | None, whose: str) -> dict[str, dict[str, Any]]:
    """An answer's outputs by name; those sent as binary data (``json_length``: the answer's
    Inference-Header-Content-Length) get their ``data`` decoded, as JSON would have carried it."""
    try:
        header = orjson.loads(body if json_length is None else body[: int(json_length)])
        outputs = header["outputs"]
        named = {str(output["name"]): output for output in outputs}
        if json_length is not None:
            binary = memoryview(body)[int(json_length) :]
            for output in outputs:
                size = (output.get("parameters") or {}).get("binary_data_size")
                if size is not None:
                    tensor = decode_binary_tensor(output["name"], output["datatype"], output["shape"], binary[:size])
                    output["data"], binary = tensor.reshape(-1).tolist(), binary[size:]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidRequest) as e:
        raise ValueError(f"the {whose} answer is not an inference response ({type(e).__name__}: {e})") from None
    return named


def grpc_outputs(message: bytes, whose: str) -> dict[str, dict[str, Any]]:
    """A serialized ModelInfer response's outputs by name, their ``data`` decoded from
    ``raw_output_contents`` or typed ``contents``, as JSON would have carried them."""
    try:
        response = pb.ModelInferResponse.FromString(message)
        raw = response.raw_output_contents
        if raw and len(raw) != len(response.outputs):
            raise ValueError(f"{len(raw)} raw_output_contents for {len(response.outputs)} output(s)")
        named: dict[str, dict[str, Any]] = {}
        for i, output in enumerate(response.outputs):
            shape = list(output.shape)
            if raw:
                data = (
                    decode_binary_tensor(output.name, output.datatype, shape, memoryview(raw[i])).reshape(-1).tolist()
                )
            else:
                data = [value for _, values in output.contents.ListFields() for value in values]
            data = [value.decode("utf-8", "replace") if isinstance(value, bytes) else value for value in data]
            named[output.name] = {"name": output.name, "datatype": output.datatype, "shape": shape, "data": data}
    except (DecodeError, ValueError, InvalidRequest) as e:
        raise ValueError(f"the {whose} answer is not an inference response ({type(e).__name__}: {e})") from None
    return named


def _score(value: Any) -> float | None:
    """An element of float data as a number (JSON writes NaN and the infinities as strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return float(value) if value in NON_FINITE else None


def _scores_agree(live: list[Any], copy: list[Any], tolerance: float) -> bool:
    for a, b in zip(map(_score, live), map(_score, copy), strict=True):
        if a is None or b is None:
            return False
        if math.isnan(a) or math.isnan(b):
            if not (math.isnan(a) and math.isnan(b)):
                return False
        elif a != b and not abs(a - b) <= tolerance:  # equal infinities agree (their difference is NaN)
            return False
    return True


def _output_agrees(live: dict[str, Any], copy: dict[str, Any] | None, tolerance: float) -> bool:
    if copy is None or list(live.get("shape") or []) != list(copy.get("shape") or []):
        return False
    a, b = _flat(live.get("data")), _flat(copy.get("data"))
    if len(a) != len(b):
        return False
    if live.get("datatype") in SCORE_DATATYPES and copy.get("datatype") in SCORE_DATATYPES:
        return _scores_agree(a, b, tolerance)
    return live.get("datatype") == copy.get("datatype") and a == b


def compare_answers(
    live: bytes,
    copy: bytes,
    max_abs_difference: float,
    live_json_length: str | None = None,
    copy_json_length: str | None = None,
) -> dict[str, bool]:
    """Per output of the ``live`` answer (Open Inference Protocol, JSON or with binary outputs after
    ``*_json_length`` bytes of JSON), whether the ``copy``'s output
    of the same name agrees: same shape, and equal data for labels (integer, bool, string datatypes),
    data within ``max_abs_difference`` element by element for scores (float datatypes on both sides;
    NaN agrees only with NaN, an infinity only with itself). ValueError when either is not an inference response."""
    theirs = _outputs(live, live_json_length, "live")
    ours = _outputs(copy, copy_json_length, "mirrored")
    return compare_outputs(theirs, ours, max_abs_difference)


def compare_outputs(
    theirs: dict[str, dict[str, Any]], ours: dict[str, dict[str, Any]], max_abs_difference: float
) -> dict[str, bool]:
    """Per output of the live answer (``theirs``, by name, as ``grpc_outputs`` reads them), whether
    the copy's (``ours``) agrees, by ``compare_answers``' rules."""
    return {name: _output_agrees(output, ours.get(name), max_abs_difference) for name, output in theirs.items()}


class ShadowMetrics:
    """The shadow step's metrics, in the router's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "modelcat_shadow_requests",
            "Requests mirrored to a version in a shadow step, by result (agree, disagree, error, dropped)",
            ["application", "model", "version", "result"],
            registry=registry,
        )
        self.latency = Histogram(
            "modelcat_shadow_request_duration_seconds",
            "Time from sending a mirrored copy to its whole answer",
            ["application", "model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.log_errors = Counter(
            "modelcat_shadow_log_errors", "Shadow log lines that could not be written", registry=registry
        )


class Mirror:
    """Sends the copies of a router's requests in the background and records what their answers say.

    ``send(model, route, path, body, headers)`` is the router's own (replica choice and retries);
    ``log`` the application's shadow log (None: metrics only). gRPC copies (``offer_grpc``) run in
    threads of its own and count towards the same ``max_in_flight``.
    """

    def __init__(
        self, metrics: ShadowMetrics, send: Send, log: AssignmentLog | None, max_in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self._send = send
        self._log = log
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._threads_busy = 0  # gRPC copies submitted and not finished
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks) + self._threads_busy

    def offer(
        self,
        application: str,
        model: CompiledModel,
        live_version: str,
        request_id: bytes,
        body: bytes,
        headers: Headers,
        live_answer: bytes,
        live_json_length: str | None = None,
    ) -> None:
        """After a routed request's live answer (200) was sent: copy it if its draw says so
        (``live_json_length``: the answer's Inference-Header-Content-Length, when it has binary outputs)."""
        drawn = self._drawn(application, model, live_version, request_id.decode("ascii"))
        if drawn is None:
            return
        where, route, tolerance = drawn
        if self.in_flight >= self.max_in_flight:
            self._drop(where)
            return
        copy_headers = [*headers, (SHADOW_HEADER, b"1")]
        live = (live_answer, live_json_length)
        task = asyncio.create_task(self._copy(where, route, body, copy_headers, live, tolerance))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _copy(
        self,
        where: tuple[str, str, str, str, str],
        route: TableRoute,
        body: bytes,
        headers: Headers,
        live: tuple[bytes, str | None],
        tolerance: float,
    ) -> None:
        application, model, _, version, _ = where
        path = f"/v2/models/{model}/versions/{version}/infer"
        started = time.perf_counter()
        try:
            upstream, _ = await self._send(model, route, path, body, headers)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001  (whatever befell the copy is its result: the router goes on)
            elapsed = time.perf_counter() - started
            self._record(
                *where, "error", latency=elapsed, error=getattr(e, "message", None) or str(e) or type(e).__name__
            )
            return
        elapsed = time.perf_counter() - started
        self.metrics.latency.labels(application, model, version).observe(elapsed)
        if upstream.status != 200:
            error = f"the mirrored version answered {upstream.status}: {upstream.body[:200].decode('utf-8', 'replace')}"
            self._record(*where, "error", status=upstream.status, latency=elapsed, error=error)
            return
        copy_json_length = upstream.header(b"inference-header-content-length")
        self._judge(where, lambda: compare_answers(live[0], upstream.body, tolerance, live[1], copy_json_length),
                    upstream.status, elapsed)  # fmt: skip

    def offer_grpc(
        self,
        application: str,
        model: CompiledModel,
        live_version: str,
        request_id: str,
        send: Callable[[TableRoute], bytes],
        live_answer: bytes,
    ) -> None:
        """After a routed ModelInfer's live answer (OK) over gRPC: copy it if its draw says so.
        ``send(route)`` sends the copy to one of ``route``'s gRPC replicas (the router's retry policy)
        and returns the answer, or raises an error with the ``status`` and ``message`` it stands for."""
        drawn = self._drawn(application, model, live_version, request_id)
        if drawn is None:
            return
        where, route, tolerance = drawn
        with self._lock:
            if self._closed:
                return
            full = self.in_flight >= self.max_in_flight
            if not full:
                self._threads_busy += 1
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="grpc-mirror")
                self._pool.submit(self._copy_grpc, where, route, send, live_answer, tolerance)
        if full:
            self._drop(where)

    @staticmethod
    def _drawn(
        application: str, model: CompiledModel, live_version: str, request_id: str
    ) -> tuple[tuple[str, str, str, str, str], TableRoute, float] | None:
        """Whether a request answered by ``live_version`` is copied: where its line goes, the mirrored
        route and the tolerance; None when the model has no mirror, the request went to the mirrored
        version itself, or its draw says no."""
        mirror = model.mirror
        if mirror is None or live_version == mirror.version or not mirror_draw(request_id, model.name, mirror.percent):
            return None
        route = model.routes[mirror.version]
        return (application, model.name, live_version, route.version, request_id), route, mirror.max_abs_difference

    def _drop(self, where: tuple[str, str, str, str, str]) -> None:
        self._record(*where, "dropped", error=f"{self.max_in_flight} mirrored copies in flight already")

    def _copy_grpc(
        self,
        where: tuple[str, str, str, str, str],
        route: TableRoute,
        send: Callable[[TableRoute], bytes],
        live_answer: bytes,
        tolerance: float,
    ) -> None:
        application, model, _, version, _ = where
        started = time.perf_counter()
        try:
            try:
                answer = send(route)
            except Exception as e:  # noqa: BLE001  (whatever befell the copy is its result)
                elapsed = time.perf_counter() - started
                error = getattr(e, "message", None) or str(e) or type(e).__name__
                self._record(*where, "error", status=getattr(e, "status", None), latency=elapsed, error=error)
                return
            elapsed = time.perf_counter() - started
            self.metrics.latency.labels(application, model, version).observe(elapsed)
            compare = lambda: compare_outputs(
                grpc_outputs(live_answer, "live"), grpc_outputs(answer, "mirrored"), tolerance
            )
            self._judge(where, compare, 200, elapsed)
        finally:
            with self._lock:
                self._threads_busy -= 1

    def _judge(
        self, where: tuple[str, str, str, str, str], compare: Callable[[], dict[str, bool]], status: int, elapsed: float
    ) -> None:
        """Record a copy's answer: agree or disagree per ``compare()``, or an error when it raises ValueError."""
        try:
            outputs = compare()
        except ValueError as e:
            self._record(*where, "error", status=status, latency=elapsed, error=str(e))
            return
        agree = all(outputs.values())
        result = "agree" if agree else "disagree"
        self._record(*where, result, status=status, latency=elapsed, agree=agree, outputs=outputs)

    def _record(
        self,
        application: str,
        model: str,
        live_version: str,
        version: str,
        request_id: str,
        result: str,
        *,
        status: int | None = None,
        latency: float | None = None,
        agree: bool | None = None,
        outputs: dict[str, bool] | None = None,
        error: str | None = None,
    ) -> None:
        self.metrics.requests.labels(application, model, version, result).inc()
        if self._log is None:
            return
        self._log.write(
            {
                "time": utc_now(),
                "request_id": request_id,
                "application": application,
                "model": model,
                "live_version": live_version,
                "mirrored_version": version,
                "result": result,
                "agree": agree,
                "outputs": outputs,
                "status": status,
                "latency_ms": None if latency is None else round(latency * 1000, 3),
                "error": error,
            }
        )

    async def aclose(self) -> None:
        """Cancel the copies still in flight (their lines are not written); gRPC copies not started
        are dropped, those sending are left to end by themselves."""
        with self._lock:
            self._closed = True
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
