"""What the router does for every request, over HTTP and gRPC alike: choose the version, and
record the answer (Prometheus series, assignment log line, prediction).

``choose`` picks the version of one request from the table in force: the pinned one (any routed
version, weight 0 included), else by the model's sticky key, else at random by weight (inference)
or the version with the largest weight (metadata, readiness). ``record`` counts the answer and, for
an inference request, writes its assignment line. The HTTP handler (``catalog.serving.router``) and
the gRPC one (``catalog.serving.router_grpc``) both call them, so an A/B analysis or a rollout's
gate sees one stream of requests whatever protocol they came by.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from catalog.domain.routing import Assignment, RandomSource, key_hash, pick_version
from catalog.serving.router_state import CompiledModel, LiveTable
from catalog.serving.router_telemetry import AssignmentLog, RouterMetrics, utc_now
from catalog.serving.table import TableRoute

__all__ = ["Choice", "NotRouted", "choose", "identity_mismatch", "record", "request_id"]


def request_id(given: str | None) -> str:
    """The caller's request id when it is 1-128 printable ASCII characters, else a new one."""
    if given and len(given) <= 128 and all(33 <= ord(c) <= 126 for c in given):
        return given
    return os.urandom(16).hex()


def identity_mismatch(said_version: str | None, said_digest: str | None, version: str, digest: str) -> str:
    """What is wrong when a replica says it serves another version or digest than the table's
    (what it does not say is not held against it); "" when nothing is."""
    if said_version is not None and said_version != version:
        return f"serves version {said_version}, not {version}"
    if said_digest is not None and said_digest != digest:
        return f"serves {said_digest}, not {digest}"
    return ""


class NotRouted(Exception):
    """The table routes no such model, or no such pinned version: the message to answer 404 with."""

    def __init__(self, message: str, version: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.version = version


@dataclass(frozen=True, slots=True)
class Choice:
    """One request's version, with the table snapshot it was chosen from and when it arrived."""

    live: LiveTable
    model: CompiledModel
    route: TableRoute
    assignment: Assignment
    key: str | None
    endpoint: str  # infer, metadata or ready
    started: float  # time.perf_counter() when the request arrived


def choose(
    live: LiveTable,
    name: str,
    pinned: str | None,
    header: Callable[[str], str | None],
    endpoint: str,
    rng: RandomSource,
    metrics: RouterMetrics,
    started: float,
) -> Choice:
    """The version for a request to model ``name``: ``pinned`` by the caller, or by the model's
    sticky key (``header(name)``: the request's header or metadata of that name, None when absent),
    or at random; an inference request's assignment is counted. Raises ``NotRouted``."""
    model = live.models.get(name)
    if model is None:
        metrics.unrouted.inc()
        routed = ", ".join(sorted(live.models))
        raise NotRouted(f"model '{name}' is not routed by application '{live.application}' (routed: {routed})")
    if pinned is not None:
        if pinned not in model.routes:
            metrics.requests_of(name, "(unknown)", endpoint, "404").inc()
            known = ", ".join(model.routes)
            raise NotRouted(f"model '{name}' has no version {pinned} in the routing table (routed: {known})", pinned)
        assignment, key = Assignment(pinned, None, "pinned"), None
    elif (key := header(model.sticky_key) if model.sticky_key else None) or endpoint == "infer":
        assignment = pick_version(model.slots, key, salt=model.name, rng=rng)
    else:
        assignment = Assignment(model.primary, None, "random")
    route = model.routes[assignment.version]
    if endpoint == "infer":
        metrics.assignments_of(name, route.version, assignment.how).inc()
    return Choice(live, model, route, assignment, key, endpoint, started)


def record(
    choice: Choice,
    request_id: str,
    status: int,
    replica: str | None,
    metrics: RouterMetrics,
    log: AssignmentLog | None,
    prediction: Callable[[], float | None],
) -> None:
    """Count the answer (``status``: the HTTP status, or the one a gRPC code stands for); for an
    inference request observe its latency and log its assignment line, with ``prediction()`` when
    the application declares a label and the request succeeded."""
    name, route = choice.model.name, choice.route
    metrics.requests_of(name, route.version, choice.endpoint, str(status)).inc()
    if choice.endpoint != "infer":
        return
    elapsed = time.perf_counter() - choice.started
    metrics.latency_of(name, route.version).observe(elapsed)
    if log is None:
        return
    live, assignment = choice.live, choice.assignment
    line = {
        "time": utc_now(),
        "request_id": request_id,
        "application": live.application,
        "model": name,
        "version": route.version,
        "digest": route.digest,
        "assignment": assignment.how,
        "bucket": assignment.bucket if assignment.how == "sticky" else None,
        "key_hash": key_hash(choice.key) if choice.key else None,
        "status": status,
        "replica": replica,
        "latency_ms": round(elapsed * 1000, 3),
        "table": live.loaded.sha256,
    }
    if live.predicts:  # the application declares a label: its live metrics need this
        line["prediction"] = prediction() if status == 200 else None
    log.write(line)
