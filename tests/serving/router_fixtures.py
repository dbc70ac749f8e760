"""Processes for the router tests: fake replicas, the router itself (through its CLI), table files.

A fake replica is a small Starlette app in its own process (so it can be SIGKILLed) that answers
the OIP v2 paths for one model version like a real replica: the identity headers
(``x-model-name``, ``x-model-version``, ``x-model-digest``) plus ``x-replica`` (which process
answered) and ``x-seen-request-id`` (the request id it received). ``x-fake-status: 500`` makes it
fail with that status, ``x-fake-delay: 0.5`` makes it slow. ``GET /fake/stats`` counts the
inference requests it answered.

Run as ``python -m tests.serving.router_fixtures fake --model M --version V --digest D --name N``;
it prints its port on the first line of stdout.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from catalog.feedback.logs import Stream

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
OIP_BODY = {"inputs": [{"name": "features", "shape": [1, 1], "datatype": "FP32", "data": [0.5]}]}


def quiet_httpcore() -> None:
    """Without sniffio installed, httpcore (the tests' httpx) searches sys.path for it per request."""
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


quiet_httpcore()


def digest_of(version: str) -> str:
    return "sha256:" + hashlib.sha256(f"fake model {version}".encode()).hexdigest()


# -- the fake replica (runs in its own process) ------------------------------------------------------


def fake_app(model: str, version: str, digest: str, name: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    identity = {"x-model-name": model, "x-model-version": version, "x-model-digest": digest, "x-replica": name}
    stats = {"infer": 0}

    def mine(request: Request) -> bool:
        return request.path_params["model"] == model and request.path_params.get("version", version) == version

    async def infer(request: Request) -> JSONResponse:
        if not mine(request):
            return JSONResponse({"error": "not served here"}, 404, headers=identity)
        body = await request.json()
        stats["infer"] += 1
        delay = float(request.headers.get("x-fake-delay", "0"))
        if delay:
            await asyncio.sleep(delay)
        headers = identity | {"x-seen-request-id": request.headers.get("x-request-id", "")}
        status = int(request.headers.get("x-fake-status", "200"))
        if status != 200:
            return JSONResponse({"error": f"fake failure from {name}"}, status, headers=headers)
        outputs = [{"name": "replica", "datatype": "BYTES", "shape": [1], "data": [name]}]
        score = request.headers.get("x-fake-score")  # a score model's answer: its output comes first
        if score is not None:
            outputs.insert(0, {"name": "score", "datatype": "FP32", "shape": [1, 1], "data": [float(score)]})
        answer = {"model_name": model, "model_version": version, "id": body.get("id", ""), "outputs": outputs}
        return JSONResponse(answer, headers=headers)

    async def metadata(request: Request) -> JSONResponse:
        if not mine(request):
            return JSONResponse({"error": "not served here"}, 404, headers=identity)
        tensor = {"name": "features", "datatype": "FP32", "shape": [-1, 1]}
        body = {"name": model, "versions": [version], "platform": "fake", "inputs": [tensor], "outputs": []}
        return JSONResponse(body, headers=identity)

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"ready": True}, headers=identity)

    async def count(request: Request) -> JSONResponse:
        return JSONResponse(stats)

    m, v = "/v2/models/{model}", "/v2/models/{model}/versions/{version}"
    return Starlette(
        routes=[
            Route(f"{m}/infer", infer, methods=["POST"]),
            Route(f"{v}/infer", infer, methods=["POST"]),
            Route(m, metadata),
            Route(v, metadata),
            Route(f"{v}/ready", ready),
            Route("/v2/health/ready", ready),
            Route("/fake/stats", count),
        ]
    )


def fake_main(argv: Sequence[str]) -> None:
    import argparse
    import socket

    import uvicorn

    parser = argparse.ArgumentParser()
    for option in ("--model", "--version", "--digest", "--name"):
        parser.add_argument(option, required=True)
    args = parser.parse_args(argv)
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every response waits ~40 ms for a delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)  # connections queue from here on, before uvicorn accepts them
    print(sock.getsockname()[1], flush=True)
    app = fake_app(args.model, args.version, args.digest, args.name)
    config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


# -- process handles ---------------------------------------------------------------------------------


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        proc.kill()
        raise RuntimeError(f"process {proc.args!r} printed nothing within {timeout} s (exit {proc.poll()})")
    return box[0].strip()


@dataclass
class FakeReplica:
    name: str
    version: str
    proc: subprocess.Popen[str]
    url: str = ""

    def kill(self) -> None:
        """SIGKILL: no goodbye, connections reset."""
        self.proc.kill()
        self.proc.wait(5)

    def stats(self) -> dict[str, int]:
        import httpx

        return httpx.get(f"{self.url}/fake/stats", timeout=5, trust_env=False).json()


@dataclass
class RouterProcess:
    proc: subprocess.Popen[str]
    stderr_path: Path
    url: str = ""
    line: str = ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self, timeout: float = 15.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def get(self, path: str) -> Any:
        import httpx

        response = httpx.get(self.url + path, timeout=5, trust_env=False)
        return response.json() if path != "/metrics" else response.text


@dataclass
class Fleet:
    """Every process a test starts; ``close`` stops whatever is still running."""

    workdir: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def _spawn(self, args: list[str], stderr: Any = subprocess.DEVNULL) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        proc = subprocess.Popen([PYTHON, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        self.procs.append(proc)
        return proc

    def fakes(self, model: str, specs: Iterable[tuple[str, str]], digest: str | None = None) -> list[FakeReplica]:
        """Start one fake per (version, name), all at once; ``digest`` overrides the right digest."""
        started = []
        for version, name in specs:
            args = ["-m", "tests.serving.router_fixtures", "fake", "--model", model, "--version", version]
            args += ["--digest", digest or digest_of(version), "--name", name]
            started.append(FakeReplica(name, version, self._spawn(args)))
        for fake in started:
            fake.url = f"http://127.0.0.1:{int(_first_line(fake.proc, 30))}"
        return started

    def router(self, table: Path, *extra: str, analytics: Path | None = None, wait: bool = True) -> RouterProcess:
        err = self.workdir / f"router-{len(self.procs)}.err"
        args = ["-m", "catalog.cli.router_command", "--table", str(table), "--port", "0", "--poll-interval", "0.1"]
        if analytics is not None:
            args += ["--analytics-dir", str(analytics)]
        with open(err, "w") as handle:
            proc = self._spawn([*args, *extra], stderr=handle)
        router = RouterProcess(proc, err)
        if wait:
            router.line = _first_line(proc, 30)
            match = re.search(r"listening on (http://\S+)", router.line)
            if not match:
                raise RuntimeError(f"unexpected first line from the router: {router.line!r}")
            router.url = match.group(1)
        return router

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()


def logged_assignments(analytics: Path, application: str, stream: Stream = "assignments") -> list[dict[str, Any]]:
    """The assignment lines (or those of another ``stream``) logged under the analytics folder
    ``analytics``: the closed segments' rows (Parquet; time as written, application from the path)
    and then the open segments' lines."""
    import duckdb

    from catalog.feedback.logs import open_segments, stream_dir

    rows: list[dict[str, Any]] = []
    for parquet in sorted(stream_dir(analytics, stream, application).glob("day=*/*.parquet")):
        relation = duckdb.sql(f"SELECT * FROM read_parquet('{parquet}', hive_partitioning=false)")
        for values in relation.fetchall():
            row = dict(zip(relation.columns, values, strict=True))
            row["time"] = row["time"].isoformat(timespec="microseconds") + "Z"
            rows.append(row | {"application": application})
    for segment in open_segments(analytics, stream, application):
        rows += [json.loads(line) for line in segment.complete_lines().decode("utf-8").splitlines()]
    return rows


def wait_for_assignments(
    analytics: Path, application: str, at_least: int, timeout: float = 60, stream: Stream = "assignments"
) -> list[dict[str, Any]]:
    """``logged_assignments`` once it holds ``at_least`` lines (or what it holds after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = logged_assignments(analytics, application, stream)
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


# -- tables --------------------------------------------------------------------------------------------


def table_document(
    models: dict[str, list[tuple[str, int, list[FakeReplica] | list[str]]]],
    application: str = "shop",
    sticky_key: str | None = "x-user-id",
) -> dict[str, Any]:
    """A routing table: per model, (version, weight, replicas) in order."""

    def urls(replicas: list[FakeReplica] | list[str]) -> list[str]:
        return [r if isinstance(r, str) else r.url for r in replicas]

    return {
        "apiVersion": "modelcat/routing-v1",
        "application": application,
        "sticky_key": sticky_key,
        "models": [
            {
                "name": name,
                "routes": [
                    {"version": v, "weight": w, "digest": digest_of(v), "replicas": urls(replicas)}
                    for v, w, replicas in routes
                ],
            }
            for name, routes in models.items()
        ],
    }


def write_table(path: Path, document: dict[str, Any] | str) -> str:
    """Replace ``path`` atomically (temp file + os.replace); the sha256 of the bytes written."""
    data = (document if isinstance(document, str) else json.dumps(document, indent=2)).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".table.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def wait_for_table(router: RouterProcess, sha256: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        routing = router.get("/routing")
        if routing["table"]["sha256"] == sha256:
            return routing
        if time.monotonic() > deadline:
            raise AssertionError(f"the router did not load table {sha256[:12]} in {timeout} s: {routing['table']}")
        time.sleep(0.05)


def wait_for_reload_error(router: RouterProcess, containing: str = "", timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        routing = router.get("/routing")
        if routing["table"]["last_error"] and containing in routing["table"]["last_error"]:
            return routing
        if time.monotonic() > deadline:
            raise AssertionError(f"the router reported no reload error in {timeout} s")
        time.sleep(0.05)


def metric(router: RouterProcess, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` (e.g. modelcat_router_retries_total) matching ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(router.get("/metrics")):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


# -- clients -------------------------------------------------------------------------------------------
#
# Bulk requests (``infer_all``) go through the standard library's http.client, one keep-alive
# connection per thread of a small pool; the steady loops use httpx.Client. Measured here (2 shared
# cores, each loopback send ~0.3 ms): per request the test process spent ~2 ms with
# httpx.AsyncClient (growing with concurrency), ~1.1-1.7 ms with httpx.Client and ~0.5 ms with
# http.client, and what the client spends the router and the fakes cannot. The 10,000-request split
# takes about half the time it takes with httpx.


@dataclass(frozen=True)
class Answer:
    status: int
    version: str | None
    replica: str | None
    request_id: str | None
    digest: str | None
    body: dict[str, Any]
    sent_at: float


def _answer(r: Any, sent: float) -> Answer:
    try:
        body = r.json()
    except ValueError:
        body = {"raw": r.text}
    h = r.headers
    return Answer(
        r.status_code,
        h.get("x-model-version"),
        h.get("x-replica"),
        h.get("x-request-id"),
        h.get("x-model-digest"),
        body,
        sent,
    )


def client(concurrency: int = 4) -> Any:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.Client(timeout=30, limits=limits, trust_env=False)


def infer_all(
    base: str,
    headers: Sequence[dict[str, str]],
    model: str,
    concurrency: int = 4,
    path: str | None = None,
) -> list[Answer]:
    """One inference request per header set, ``concurrency`` at a time; answers in the same order."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(base)
    target = path or f"/v2/models/{model}/infer"
    body = json.dumps(OIP_BODY).encode()
    local = threading.local()
    opened: list[http.client.HTTPConnection] = []

    def one(h: dict[str, str]) -> Answer:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
            opened.append(conn)
        sent = time.monotonic()
        conn.request("POST", target, body=body, headers={"content-type": "application/json", **h})
        response = conn.getresponse()
        data = response.read()
        try:
            answer = json.loads(data)
        except ValueError:
            answer = {"raw": data.decode(errors="replace")}
        get = response.getheader
        return Answer(
            response.status,
            get("x-model-version"),
            get("x-replica"),
            get("x-request-id"),
            get("x-model-digest"),
            answer,
            sent,
        )

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(one, headers))
    finally:
        for conn in opened:
            conn.close()


class SteadyLoad:
    """A client loop: ``workers`` threads sending requests back to back until stopped."""

    def __init__(self, base: str, model: str, workers: int = 4, keyed: bool = False) -> None:
        self.url = f"{base}/v2/models/{model}/infer"
        self.workers, self.keyed = workers, keyed
        self.answers: list[Answer] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(workers)]
        self._http = client(workers)

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        self._http.close()

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        """Until ``count`` more answers arrived."""
        target = len(self.answers) + count
        deadline = time.monotonic() + timeout
        while len(self.answers) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the client loop got {len(self.answers)} answers, wanted {target}")
            time.sleep(0.02)

    def _work(self, n: int) -> None:
        import httpx

        i = 0
        while not self._stop.is_set():
            i += 1
            headers = {"x-user-id": f"w{n}-{i}"} if self.keyed else {}
            sent = time.monotonic()
            try:
                self.answers.append(_answer(self._http.post(self.url, json=OIP_BODY, headers=headers), sent))
            except httpx.HTTPError as e:  # recorded: the tests assert there are none
                self.errors.append(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["fake"]:
        fake_main(sys.argv[2:])
    else:
        sys.exit("usage: python -m tests.serving.router_fixtures fake --model M --version V --digest D --name N")
