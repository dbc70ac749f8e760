"""What the router records: Prometheus metrics (one registry per router) and the assignment log.

The assignment log is append-only JSON lines, one per inference request, written by a background
thread so the event loop never waits for the disk: into the application's segmented log under the
stack's analytics folder (``catalog.feedback.logs``; ``--analytics-dir``) and/or to stdout
(``--assignments-stdout``). The thread sleeps until a line is queued, then writes every line queued
by then, 50 ms after the first, in one go: a line is in the file moments after its request was
answered, and many lines share one wake-up and one write instead of one each::

    {"time": "2026-11-27T10:30:00.123456Z", "request_id": "5f0c...", "application": "checkout",
     "model": "fraud-scorer", "version": "1.4.0", "digest": "sha256:344e...", "assignment": "sticky",
     "bucket": 93, "key_hash": "9b1d...", "status": 200, "replica": "http://10.0.0.7:8001",
     "latency_ms": 3.1, "table": "<sha256 of the routing table in force>"}

``assignment`` is ``sticky`` (by the key's bucket), ``random`` (no key: a random bucket) or
``pinned`` (the caller named the version; leave these out of an A/B analysis). ``key_hash`` is
``catalog.domain.routing.key_hash`` of the sticky key (never the key itself), or null.
``replica`` is the replica that answered, or null when none did. Where the application declares a
``label`` outcome (its routing table's ``outcomes``), each line also has ``prediction``: the first
element of the first output of the response (``prediction_of``: a score, or a class as a number), null
when the request failed or the answer has none; the live metrics join the labels to it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from catalog.errors import UsageError
from catalog.feedback.logs import SegmentWriter, Stream, json_line
from catalog.serving.oip import DATATYPES

__all__ = ["AssignmentLog", "RouterMetrics", "finite_number", "first_binary_element", "prediction_of", "utc_now"]

log = logging.getLogger("catalog.serving.router")

# The assignment log's writer gathers lines this long after the first before it writes them: a wake-up
# of its thread (and a write) per request cost the router about 0.05 ms of CPU each (BENCHMARKS.md)
BATCH_SECONDS = 0.05
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RouterMetrics:
    """The router's metrics, in a registry of its own (two routers in one process do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "modelcat_router_requests",
            "Requests answered, by model, version, endpoint and HTTP status",
            ["model", "version", "endpoint", "code"],
            registry=r,
        )
        self.assignments = Counter(
            "modelcat_router_assignments",
            "Inference requests assigned to a version, by how (sticky, random, pinned)",
            ["model", "version", "how"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "modelcat_router_upstream_errors",
            "Failed attempts to reach a replica, by kind (connect, dropped, timeout, identity, other)",
            ["model", "version", "kind"],
            registry=r,
        )
        self.retries = Counter(
            "modelcat_router_retries",
            "Attempts repeated on a replica of the same version after a connection failure",
            ["model", "version"],
            registry=r,
        )
        self.unrouted = Counter(
            "modelcat_router_unrouted_requests", "Requests for a model not in the table", registry=r
        )
        self.latency = Histogram(
            "modelcat_router_request_duration_seconds",
            "Time from receiving an inference request to answering it",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "modelcat_router_table_reloads", "Routing table loads, by result (ok, error)", ["result"], registry=r
        )
        self.generation = Gauge("modelcat_router_table_generation", "Generation of the table in force", registry=r)
        self.weight = Gauge(
            "modelcat_router_route_weight",
            "Percent of traffic per version in the table in force",
            ["model", "version"],
            registry=r,
        )
        self.assignment_log_errors = Counter(
            "modelcat_router_assignment_log_errors", "Assignment log lines that could not be written", registry=r
        )

        # The series of the hot path, by label values: labels() takes a lock and checks its arguments
        # on every call, a cached child is one dict lookup. (None of these metrics is ever cleared.)
        self.requests_of = functools.lru_cache(maxsize=4096)(self.requests.labels)
        self.assignments_of = functools.lru_cache(maxsize=4096)(self.assignments.labels)
        self.latency_of = functools.lru_cache(maxsize=4096)(self.latency.labels)

    def table_installed(self, generation: int, weights: dict[tuple[str, str], int]) -> None:
        self.generation.set(generation)
        self.weight.clear()
        for (model, version), weight in weights.items():
            self.weight.labels(model, version).set(weight)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def prediction_of(body: bytes, json_length: str | None = None) -> float | None:
    """The first element of the first output of an Open Inference Protocol response (a score, or
    a class as a number; true is 1), or None when there is none or it is not a finite number.

    ``json_length`` is the response's ``Inference-Header-Content-Length``: the first output may then
    be binary data after the JSON, of which only the first element is read."""
    try:
        header = orjson.loads(body[: int(json_length)] if json_length is not None else body)
        first = header["outputs"][0]
        if json_length is not None and "binary_data_size" in (first.get("parameters") or {}):
            value = first_binary_element(body[int(json_length) :], first["datatype"])
        else:
            value = first["data"]
        while isinstance(value, list):  # the data of a tensor may be written nested
            value = value[0]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None
    return finite_number(value)


def finite_number(value: object) -> float | None:
    """``value`` as a prediction: a finite number (true is 1), else None (a string, null, NaN)."""
    if not isinstance(value, int | float):  # a string output, or null
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def first_binary_element(data: bytes, datatype: str) -> int | float | None:
    """The first element of a tensor's binary data (little-endian), None for BYTES or too little data."""
    dtype = DATATYPES.get(datatype)
    if dtype is None or datatype == "BYTES" or len(data) < dtype.itemsize:
        return None
    value = np.frombuffer(data, dtype=dtype.newbyteorder("<"), count=1)[0].item()
    return value if isinstance(value, int | float) else None


class AssignmentLog:
    """Write assignment lines (or a shadow log's) from a writer thread; ``write`` never blocks on the disk.

    The lines go to the application's segmented log (``catalog.feedback.logs``: by the day of their
    time, closed segments become Parquet) and/or to ``stream`` (stdout, for a cluster's log pipeline).
    """

    def __init__(
        self,
        segments: SegmentWriter | None,
        stream: TextIO | None = None,
        metrics: RouterMetrics | None = None,
        errors: Counter | None = None,
    ) -> None:
        self._segments = segments
        self._stream = stream
        self._errors = errors if errors is not None else metrics.assignment_log_errors if metrics else None
        self._name = f"{segments.stream} log" if segments is not None else "assignment log"
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name=self._name.replace(" ", "-"), daemon=True)
        self._thread.start()
        self._closed = False

    @classmethod
    def open(
        cls,
        analytics: Path | None,
        application: str,
        stdout: bool,
        metrics: RouterMetrics | None = None,
        kind: Stream = "assignments",
        errors: Counter | None = None,
    ) -> AssignmentLog | None:
        """The log of ``application`` under the analytics folder and/or to stdout (None: neither):
        its assignments, or its lines of another ``kind`` (the shadow log) with their own ``errors``."""
        if analytics is None and not stdout:
            return None
        segments = None
        if analytics is not None:
            try:
                segments = SegmentWriter(analytics, kind, application)
            except OSError as e:
                raise UsageError(f"cannot open the {kind} log in {analytics}: {e.strerror or e}") from None
        return cls(segments, sys.stdout if stdout else None, metrics, errors)

    def write(self, record: dict[str, Any]) -> None:
        if not self._closed:
            self._queue.put((record["time"][:10], json_line(record)))

    def _drain(self) -> None:
        failing = False
        while True:
            lines = [self._queue.get()]  # asleep until there is a line (or the end)
            if lines[0] is not None:
                time.sleep(BATCH_SECONDS)  # let lines gather: one wake-up and one write for many
            with contextlib.suppress(queue.Empty):
                while True:  # and whatever else is queued by now, without waiting
                    lines.append(self._queue.get_nowait())
            done = None in lines
            batches: dict[str, list[str]] = {}
            for item in lines:
                if item is not None:
                    batches.setdefault(item[0], []).append(item[1])
            for day, batch in sorted(batches.items()):
                text = "".join(batch)
                try:
                    if self._segments is not None:
                        self._segments.append(text, day)
                    if self._stream is not None:
                        self._stream.write(text)
                        self._stream.flush()
                    failing = False
                except (OSError, ValueError) as e:
                    if self._errors is not None:
                        self._errors.inc(len(batch))
                    if not failing:
                        log.error("%s: cannot write: %s", self._name, e)
                    failing = True
            if done:
                return

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then close the open segment (converted to Parquet)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._segments is not None:
            try:
                self._segments.close()
            except OSError as e:
                log.error("%s: %s", self._name, e)
