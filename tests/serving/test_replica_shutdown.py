"""Graceful shutdown: on SIGTERM the replica stops accepting, finishes what is in flight, and exits 0."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.replica_fixtures import RunningReplica, slow_model, start_replica, stop_replica, write_model

pytestmark = pytest.mark.slow

SIZE = 256
TARGET_SECONDS = 2.0  # how long the in-flight request should run: long enough to signal during it


@pytest.fixture
def slow_replica(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningReplica]:
    """A replica of the slow model; ``@pytest.mark.parametrize("slow_replica", [seconds], indirect=True)``
    sets its drain window (30 s otherwise)."""
    drain = str(getattr(request, "param", 30))
    path, digest = write_model(slow_model(SIZE), tmp_path / "slow.onnx")
    with start_replica("slow", "1.0.0", path, digest, extra_args=["--drain-seconds", drain]) as running:
        yield running


def slow_request(iterations: int) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "x", "shape": [1, SIZE], "datatype": "FP32", "data": [0.5] * SIZE},
            {"name": "iterations", "shape": [], "datatype": "INT64", "data": [iterations]},
        ]
    }


def calibrated_iterations(client: httpx.Client, seconds: float = TARGET_SECONDS) -> int:
    """Iterations for a request of about ``seconds`` on this machine, measured on the replica."""
    probe = 200
    started = time.perf_counter()
    assert client.post("/v2/models/slow/infer", json=slow_request(probe)).status_code == 200
    per_iteration = (time.perf_counter() - started) / probe  # includes a few ms of HTTP: errs short
    return min(max(probe, int(seconds / per_iteration)), 2_000_000)


def in_flight(client: httpx.Client) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "modelcat_replica_inferences_in_flight":
                return sample.value
    return 0.0


def start_in_flight(client: httpx.Client, send: Callable[[], None], timeout: float = 30) -> threading.Thread:
    """A thread running ``send`` (a slow request), once the replica behind ``client`` counts it in flight."""
    worker = threading.Thread(target=send)
    worker.start()
    deadline = time.monotonic() + timeout
    while in_flight(client) < 1:  # the request has reached the model
        assert worker.is_alive() and time.monotonic() < deadline, "the slow request never got in flight"
        time.sleep(0.02)
    return worker


def refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) != 0


def test_sigterm_drains_the_request_in_flight(slow_replica: RunningReplica) -> None:
    url, process = slow_replica
    with httpx.Client(base_url=url, timeout=60.0) as client:
        iterations = calibrated_iterations(client)
        outcome: dict[str, Any] = {}

        def send() -> None:
            try:
                outcome["response"] = httpx.post(
                    f"{url}/v2/models/slow/infer", json=slow_request(iterations), timeout=60
                )
            except httpx.HTTPError as e:
                outcome["error"] = e
            outcome["finished"] = time.monotonic()

        worker = start_in_flight(client, send)

    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    # New connections are refused at once, while the old request is still running.
    while not refuses_connections(url):  # until the listener closes, which must come before the answer
        assert worker.is_alive(), "the replica kept accepting connections until the request in flight ended"
        time.sleep(0.02)
    assert worker.is_alive(), "the request ended before the listener closed: the test proved nothing"

    worker.join(60)
    assert "error" not in outcome, f"the in-flight request was dropped: {outcome.get('error')!r}"
    response = outcome["response"]
    assert response.status_code == 200, response.text
    assert outcome["finished"] > signalled
    [y] = response.json()["outputs"]
    assert y["name"] == "y" and y["shape"] == [1, SIZE] and len(y["data"]) == SIZE
    assert process.wait(30) == 0
    assert "stopped (SIGTERM)" in process.stderr_text()


def test_sigint_stops_an_idle_replica_cleanly(slow_replica: RunningReplica) -> None:
    url, process = slow_replica
    process.send_signal(signal.SIGINT)
    assert process.wait(15) == 0
    assert "stopped (SIGINT)" in process.stderr_text()
    assert "Traceback" not in process.stderr_text()
    assert refuses_connections(url)
    assert stop_replica(process) == 0


@pytest.mark.parametrize("slow_replica", [0.5], indirect=True)
def test_the_drain_window_bounds_shutdown(slow_replica: RunningReplica) -> None:
    """A request still running when the drain window closes is stopped, model run included, so
    SIGTERM ends the process in about the window, not when the request would have finished."""
    url, process = slow_replica
    request_seconds = 15.0
    with httpx.Client(base_url=url, timeout=60.0) as client:
        iterations = calibrated_iterations(client, request_seconds)
        outcome: dict[str, Any] = {}

        def send() -> None:
            try:
                outcome["status"] = client.post("/v2/models/slow/infer", json=slow_request(iterations)).status_code
            except httpx.HTTPError as e:
                outcome["error"] = e

        worker = threading.Thread(target=send)
        worker.start()
        with httpx.Client(base_url=url, timeout=10.0) as probe:
            deadline = time.monotonic() + 10
            while in_flight(probe) < 1:
                assert time.monotonic() < deadline, "the slow request never got in flight"
                time.sleep(0.02)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(request_seconds) == 0
        stopped_after = time.monotonic() - signalled
        worker.join(10)
    assert stopped_after < request_seconds / 3, f"exit took {stopped_after:.1f} s: the model run outlived the drain"
    assert outcome.get("status", 500) >= 500  # cut off: a 5xx or a closed connection, never a 200
    assert "timeout graceful shutdown exceeded" in process.stderr_text()
