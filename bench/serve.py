"""Benchmark serving: in-process onnxruntime vs HTTP to one replica vs through the router; cold start.

Run from the repository root with ``make bench``, or:

    .venv/bin/python bench/serve.py [--repeat 3] [--seconds 3] [--clients 1,16] [--cold-runs 5]
                                    [--skip-big] [--skip-encodings] [--baseline-router DIR]
                                    [--baseline-replica DIR] [--json results.json]

Three measurements, each printed as a Markdown table, with a verdict per target:

  1. Latency and throughput, for the demo model fraud-scorer 1.3.0 (2.4 KB) and a generated model of
     about 100 MB (``features`` [batch, 16] -> dense(1.4 M) -> relu -> dense(1) -> sigmoid, weights
     inline), each request one row of 16 float32. Three paths, measured in the same run:
       * in-process: ``InferenceSession.run`` on a session loaded as the replica loads it (baseline);
       * direct: HTTP (OIP v2 JSON) to one ``modelcat replica`` process;
       * direct-grpc (the demo model): ModelInfer over gRPC to the same replica, raw contents;
       * router: HTTP through one ``modelcat router`` process (a table with that one replica at
         weight 100, a sticky key header, an assignment log) in front of the very same replica.
     With 1 and 16 concurrent clients, each a thread holding one keep-alive ``http.client``
     connection (the cheapest client in Python: what the client spends, the servers cannot). Each
     cell warms up, then sends requests back to back for --seconds; p50/p99 latency per request and
     throughput. Every repetition runs all cells, rotating the order of the paths; the figures are
     medians over --repeat repetitions. Targets: the router adds <= 1 ms p50 and <= 5 ms p99 over
     direct, and keeps >= 80 % of direct throughput. Then the demo model over gRPC, direct to a replica
     vs through the router (``serve_grpc``): the router adds <= 0.5 ms p50 at 1 client.
     With --baseline-router DIR, a fourth path, *router-before*: the router of another source tree
     (DIR holds its ``catalog/`` package, e.g. ``git archive REV catalog | tar -x -C DIR``), run with
     ``PYTHONPATH=DIR`` in front of the same replica and timed in the same interleaved runs, so an
     old and a new router compare under the same load.
  2. The Open Inference Protocol's encodings, direct to one replica (``--grpc-port``), on an input of
     1 MiB of float32 (``x`` [256, 1024] -> ReduceSum: a few bytes of answer, almost no compute): OIP
     JSON (``direct``), the binary tensor extension (``direct-binary``) and gRPC with raw contents
     (``direct-grpc``), each request encoded once before timing (as the JSON body above), and Triton's
     own clients with their defaults, which encode every request (``tritonclient-http``,
     ``tritonclient-grpc``); then binary HTTP and gRPC on a model answering 1 MiB too (Relu), without
     a target; with --baseline-replica DIR, the replica of another source tree (DIR holds its
     ``catalog/``) serves the same model beside it and is timed as ``direct-binary-before`` and
     ``direct-grpc-before`` in the same runs. Same cells, clients and interleaving as above. The targets, in one table with PASS or
     FAIL, each against its baseline measured in the same run (``oip_targets``): binary HTTP >= 5x
     JSON's throughput, gRPC p50 <= 1.5x binary HTTP's at 1 client (and with Triton's clients), and
     the demo model through the router >= 90 % of direct throughput at 16 clients. A path to a
     router over gRPC slots in as one more entry of ``makers`` (``Fleet.grpc["router"]``), of a
     model's paths and of ``oip_targets``.
  3. Cold start of a replica of the ~100 MB model: from spawning ``modelcat replica`` to the first
     ``GET /v2/health/ready`` answered 200, median of --cold-runs, page cache warm. Split into its
     parts, measured separately in the same run: interpreter start, the imports, ``hash_file``,
     onnxruntime session creation, ``load_verified`` (what the replica does: hash while reading,
     then a session from those bytes). The demo model's cold start gives the floor. Target: <= 2 s.

The machine's cores are shared by the client, the router and the replica: on 2 cores the client's
own CPU competes with the servers', which the notes in BENCHMARKS.md take into account.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_cold import bench_cold
from serve_fleet import (
    BEFORE,
    SMALL,
    STICKY,
    Fleet,
    Model,
    big_model,
    serving,
    wide_model,
)
from serve_grpc import bench_router_grpc, print_router_grpc
from validate import modelcat_command

from catalog.serving.oip_grpc import SERVICE
from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.replica_model import load_verified

TARGET_P50_MS, TARGET_P99_MS, TARGET_THROUGHPUT = 1.0, 5.0, 0.80
WARMUP_S = 0.5
# The paths each model is timed on (a path is a key of ``makers``): the demo model's, the ~100 MB
# model's, and the 1 MiB input's, where the encodings are compared direct to the replica.
PATHS = ("in-process", "direct", "direct-grpc", "router")
BIG_PATHS = ("in-process", "direct", "router")
ENCODING_PATHS = ("direct", "direct-binary", "direct-grpc", "tritonclient-http", "tritonclient-grpc")
ECHO_PATHS = ("direct-binary", "direct-grpc")  # the 1 MiB answer (no target): JSON would take seconds
REPLICA_BEFORE = ("direct-binary-before", "direct-grpc-before")  # with --baseline-replica DIR: that tree's replica
# what each path through a router is compared with: direct to the replica, in the same protocol
DIRECT_OF = {"router": "direct", BEFORE: "direct", "router-grpc": "direct-grpc"}
MODEL_INFER = f"/{SERVICE}/ModelInfer"


# -- load generation --------------------------------------------------------------------------------

Sender = Callable[[int], None]  # one request; the argument numbers it within its thread
Maker = Callable[[int], tuple[Sender, Callable[[], None]]]  # a client thread's sender and its closer


def request_body(rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    row = rng.random((1, 16), dtype=np.float32)
    return encode_request("features", row).json, row


@dataclass(frozen=True)
class Payload:
    """One request, encoded once before timing in each way a path sends it."""

    input_name: str
    array: np.ndarray
    json: bytes  # OIP v2 JSON
    binary: bytes  # the binary tensor extension: a JSON header, then the tensor's bytes
    binary_headers: dict[str, str]
    grpc: bytes  # a serialized ModelInferRequest, the tensor in raw_input_contents, no version (as to a router)
    grpc_pinned: bytes  # the same naming the model's version (as to a replica)


def encode_request(input_name: str, array: np.ndarray, model: Model = SMALL) -> Payload:
    """``array`` as the one input of ``model``, every way; binary and gRPC answers come back binary
    (tritonclient's default)."""
    spec = {"name": input_name, "shape": list(array.shape), "datatype": "FP32"}
    body = json.dumps({"inputs": [spec | {"data": array.ravel().tolist()}]}).encode()
    header = json.dumps(
        {"inputs": [spec | {"parameters": {"binary_data_size": array.nbytes}}],
         "parameters": {"binary_data_output": True}}
    ).encode()  # fmt: skip
    headers = {"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))}
    tensor = pb.ModelInferRequest.InferInputTensor(name=input_name, datatype="FP32", shape=array.shape)
    message = pb.ModelInferRequest(model_name=model.name, inputs=[tensor], raw_input_contents=[array.tobytes()])
    pinned = pb.ModelInferRequest()
    pinned.CopyFrom(message)
    pinned.model_version = model.version
    return Payload(
        input_name, array, body, header + array.astype("<f4").tobytes(), headers, message.SerializeToString(),
        pinned.SerializeToString(),
    )  # fmt: skip


def http_sender(
    url: str, path: str, body: bytes, thread: int, headers: dict[str, str] | None = None
) -> tuple[Sender, Callable[[], None]]:
    """A keep-alive connection; each request carries a distinct sticky key."""
    where = urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=60)
    base = headers or {"content-type": "application/json"}

    def send(n: int) -> None:
        conn.request("POST", path, body=body, headers=base | {STICKY: f"user-{thread}-{n}"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}{path}: HTTP {response.status}: {data[:300]!r}")

    return send, conn.close


def grpc_sender(address: str, message: bytes, thread: int) -> tuple[Sender, Callable[[], None]]:
    """A channel with a connection of its own (as each HTTP client holds one); ModelInfer with the
    message's bytes as given and the answer's bytes as they come (no (de)serializer on the client:
    the cheapest client, as http.client is for HTTP), each request a distinct sticky key in its
    metadata. A call that fails raises ``grpc.RpcError``."""
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
               ("grpc.use_local_subchannel_pool", 1)]  # fmt: skip
    channel = grpc.insecure_channel(address, options=options)
    infer = channel.unary_unary(MODEL_INFER)

    def send(n: int) -> None:
        infer(message, metadata=((STICKY, f"user-{thread}-{n}"),), timeout=60)

    return send, channel.close


def tritonclient_sender(
    protocol: str, address: str, model: Model, payload: Payload, thread: int
) -> tuple[Sender, Callable[[], None]]:
    """Triton's own client (``tritonclient.http`` or ``.grpc``) with its defaults, one per thread: the
    tensor set from numpy and the request encoded on every call, as its users' code does."""
    if protocol == "http":
        import tritonclient.http as triton  # imported only when timed
    else:
        import tritonclient.grpc as triton
    client = triton.InferenceServerClient(address)
    shape = list(payload.array.shape)

    def send(n: int) -> None:
        tensor = triton.InferInput(payload.input_name, shape, "FP32")
        tensor.set_data_from_numpy(payload.array)
        client.infer(model.name, [tensor], model_version=model.version, headers={STICKY: f"user-{thread}-{n}"})

    return send, client.close


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cell(
    make_sender: Maker,
    clients: int,
    seconds: float,
    servers: dict[str, int],
) -> dict:
    """``clients`` threads sending back to back: warm-up, then ``seconds`` measured together. Also the
    CPU time per request of this process (the client) and of each server process (by pid)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    ends = [0.0] * clients
    errors: list[str] = []
    box: dict[str, float] = {}
    cpu0: dict[str, float] = {}

    def start() -> None:
        cpu0.update({name: cpu_seconds(pid) for name, pid in servers.items()}, client=time.process_time())
        box["t0"] = time.perf_counter()

    barrier = threading.Barrier(clients, action=start)

    def worker(i: int) -> None:
        send, close = make_sender(i)
        try:
            n, warm_until = 0, time.perf_counter() + WARMUP_S
            while time.perf_counter() < warm_until:
                send(n)
                n += 1
            barrier.wait()
            deadline, mine = box["t0"] + seconds, latencies[i]
            clock = time.perf_counter
            while (start := clock()) < deadline:
                send(n)
                n += 1
                mine.append(clock() - start)
            ends[i] = clock()
        except Exception as e:  # noqa: BLE001  (any failure: recorded, the other threads released, reported below)
            errors.append(f"{type(e).__name__}: {e}")
            barrier.abort()
        finally:
            close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in servers.items()}
    cpu["client"] = time.process_time() - cpu0["client"]
    if errors:
        sys.exit(f"requests failed: {errors[0]}")
    ms = np.concatenate([np.asarray(x) for x in latencies]) * 1000
    elapsed = max(ends) - box["t0"]
    return {
        "requests": int(ms.size),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "rps": ms.size / elapsed,
        "cpu_ms_per_request": {name: seconds * 1000 / ms.size for name, seconds in cpu.items()},
    }


def check_answers(model: Model, fleet: Fleet, payload: Payload) -> None:
    """One request each way, before timing: 200 (or OK), an output, the right version and digest."""
    ways = [(url, versioned_path(model), body, headers) for url in filter(None, (fleet.replica, fleet.replica_before))
            for body, headers in ((payload.json, None), (payload.binary, payload.binary_headers))]  # fmt: skip
    ways += [(url, f"/v2/models/{model.name}/infer", payload.json, None) for url in fleet.routers.values()]
    for url, path, body, headers in ways:
        where = urlsplit(url)
        conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=60)
        conn.request("POST", path, body=body, headers=(headers or {"content-type": "application/json"}) | {STICKY: "c"})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        size = int(r.getheader("inference-header-content-length") or len(data))
        answer = json.loads(data[:size]) if r.status == 200 else data
        ok = r.status == 200 and answer.get("outputs") and r.getheader("x-model-version") == model.version
        if not ok or r.getheader("x-model-digest") != model.digest:
            sys.exit(f"{url}{path} answered {r.status} {answer!r} {r.getheaders()!r}")
    for address in fleet.grpc.values():
        with grpc.insecure_channel(address) as channel:
            infer = channel.unary_unary(MODEL_INFER, response_deserializer=pb.ModelInferResponse.FromString)
            reply = infer(payload.grpc, metadata=((STICKY, "c"),), timeout=60)
        if (
            reply.model_version != model.version
            or len(reply.raw_output_contents) != len(reply.outputs)
            or not reply.outputs
        ):
            sys.exit(f"gRPC {address} answered {reply!r}")


def versioned_path(model: Model) -> str:
    return f"/v2/models/{model.name}/versions/{model.version}/infer"


def makers(fleet: Fleet, model: Model, payload: Payload, session: ort.InferenceSession) -> dict[str, Maker]:
    """Every path to ``model`` that ``fleet`` offers, by name: how each client thread sends."""
    infer, pinned = f"/v2/models/{model.name}/infer", versioned_path(model)
    feed = {session.get_inputs()[0].name: payload.array}
    out: dict[str, Maker] = {
        "in-process": lambda i: (lambda n: session.run(None, feed), lambda: None),
        "direct": lambda i: http_sender(fleet.replica, pinned, payload.json, i),
        "direct-binary": lambda i: http_sender(fleet.replica, pinned, payload.binary, i, payload.binary_headers),
        **{name: (lambda i, url=url: http_sender(url, infer, payload.json, i)) for name, url in fleet.routers.items()},
    }
    out["tritonclient-http"] = lambda i: tritonclient_sender("http", urlsplit(fleet.replica).netloc, model, payload, i)
    if fleet.replica_before:
        before = fleet.replica_before
        out["direct-binary-before"] = lambda i: http_sender(before, pinned, payload.binary, i, payload.binary_headers)
    if "replica-before" in fleet.grpc:
        out["direct-grpc-before"] = lambda i: grpc_sender(fleet.grpc["replica-before"], payload.grpc_pinned, i)
    if "replica" in fleet.grpc:
        out["direct-grpc"] = lambda i: grpc_sender(fleet.grpc["replica"], payload.grpc_pinned, i)
        out["tritonclient-grpc"] = lambda i: tritonclient_sender("grpc", fleet.grpc["replica"], model, payload, i)
    return out


def bench_model(
    cli: str,
    model: Model,
    workdir: Path,
    clients_list: list[int],
    seconds: float,
    repeat: int,
    paths: tuple[str, ...],
    payload: Payload,
    baseline: Path | None = None,
    baseline_replica: Path | None = None,
) -> dict:
    """Every (path, clients) cell for one model, ``repeat`` times, paths rotated each time."""
    session = load_verified(model.artifact, model.digest).session  # as the replica builds it
    runs: dict[str, list[dict]] = {f"{p}/{c}": [] for c in clients_list for p in paths}
    grpc_on = any("grpc" in p for p in paths)
    with serving(cli, model, workdir, baseline, grpc=grpc_on, baseline_replica=baseline_replica) as fleet:
        check_answers(model, fleet, payload)
        senders = makers(fleet, model, payload, session)
        for rep in range(repeat):
            for clients in clients_list:
                order = paths[rep % len(paths) :] + paths[: rep % len(paths)]
                for path in order:
                    print(f"  {model.name}: rep {rep + 1}, {clients} client(s), {path}", file=sys.stderr, flush=True)
                    runs[f"{path}/{clients}"].append(run_cell(senders[path], clients, seconds, fleet.pids))
    cells = {}
    for key, reps in runs.items():
        cells[key] = {m: statistics.median(r[m] for r in reps) for m in ("p50_ms", "p99_ms", "rps")}
        cells[key] |= {"requests": sum(r["requests"] for r in reps), "runs": reps}
        cells[key]["cpu_ms"] = {
            name: statistics.median(r["cpu_ms_per_request"][name] for r in reps) for name in ("client", *fleet.pids)
        }
    return cells


def paths_of(baseline: Path | None, paths: tuple[str, ...] = PATHS) -> tuple[str, ...]:
    return paths + ((BEFORE,) if baseline is not None else ())


def verdicts(model: Model, cells: dict, clients_list: list[int]) -> list[dict]:
    out = []
    for clients in clients_list:
        direct, router = cells[f"direct/{clients}"], cells[f"router/{clients}"]
        d50 = router["p50_ms"] - direct["p50_ms"]
        d99 = router["p99_ms"] - direct["p99_ms"]
        share = router["rps"] / direct["rps"]
        for target, value, ok, unit in (
            (f"router adds <= {TARGET_P50_MS:g} ms p50", d50, d50 <= TARGET_P50_MS, "ms"),
            (f"router adds <= {TARGET_P99_MS:g} ms p99", d99, d99 <= TARGET_P99_MS, "ms"),
            (f"router keeps >= {TARGET_THROUGHPUT:.0%} of direct throughput", share, share >= TARGET_THROUGHPUT, "%"),
        ):
            out.append({"model": model.name, "clients": clients, "target": target, "value": value, "met": ok,
                        "unit": unit})  # fmt: skip
    return out


def cpu_columns(path: str, cells: dict) -> str:
    """CPU ms/request of the client, the replica and the router a path goes through ("-" where none)."""
    direct = path == "in-process" or path.startswith(("direct", "tritonclient"))
    router = None if direct else (BEFORE if path == BEFORE else "router")
    replica = "replica-before" if path.endswith("-before") and router is None else "replica"
    used = ("client", None if path == "in-process" else replica, router)
    return ", ".join(f"{cells['cpu_ms'][n]:.2f}" if n else "-" for n in used)


def print_latency_table(
    model: Model, cells: dict, clients_list: list[int], repeat: int, seconds: float, paths: tuple[str, ...] = PATHS
) -> None:
    print(f"### {model.label}: medians of {repeat} interleaved runs of {seconds:g} s per cell\n")
    print(
        "| clients | path | requests | p50 (ms) | p99 (ms) | throughput (req/s) | CPU ms/request: client, replica, router "
        "| router +p50 (ms) | router +p99 (ms) | router / direct throughput |"
    )
    print("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for clients in clients_list:
        for path in paths:
            c = cells[f"{path}/{clients}"]
            derived = "| - | - | - |"
            if path in DIRECT_OF:  # against direct in the same protocol
                direct = cells[f"{DIRECT_OF[path]}/{clients}"]
                derived = (
                    f"| {c['p50_ms'] - direct['p50_ms']:+.2f} | {c['p99_ms'] - direct['p99_ms']:+.2f} "
                    f"| {c['rps'] / direct['rps']:.0%} |"
                )
            print(
                f"| {clients} | {path} | {c['requests']:,} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} "
                f"| {c['rps']:,.0f} | {cpu_columns(path, c)} {derived}"
            )
    print()


def print_encoding_table(
    model: Model, cells: dict, clients_list: list[int], repeat: int, seconds: float, paths: tuple[str, ...]
) -> None:
    """The 1 MiB paths, each against JSON's throughput (when measured) and binary HTTP's p50."""
    print(f"### {model.label}, direct to the replica: medians of {repeat} interleaved runs of {seconds:g} s per cell\n")
    print(
        "| clients | path | requests | p50 (ms) | p99 (ms) | throughput (req/s) | CPU ms/request: client, replica "
        "| throughput / JSON's | p50 / binary HTTP's |"
    )
    print("|---:|---|---:|---:|---:|---:|---|---:|---:|")
    for clients in clients_list:
        json_cell, binary = cells.get(f"direct/{clients}"), cells[f"direct-binary/{clients}"]
        for path in paths:
            c = cells[f"{path}/{clients}"]
            against_json = f"{c['rps'] / json_cell['rps']:.1f}x" if json_cell else "-"
            print(
                f"| {clients} | {path} | {c['requests']:,} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {c['rps']:,.1f} "
                f"| {cpu_columns(path, c).rsplit(', ', 1)[0]} | {against_json} | {c['p50_ms'] / binary['p50_ms']:.2f}x |"
            )
    print()


@dataclass(frozen=True)
class Target:
    """One of the issue's serving targets, judged on medians measured in the same run."""

    target: str
    measured: str  # the figures the value comes from
    value: float
    limit: float
    unit: str  # "x", "%" or "ms"
    at_least: bool  # the value must be >= limit (else <=)

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def shown(self, value: float) -> str:
        return {"x": f"{value:.2f}x", "%": f"{value:.1%}", "ms": f"{value:+.2f} ms"}[self.unit]


def oip_targets(latency: dict[str, dict], wide: Model, clients_list: list[int]) -> list[Target]:
    """The issue's targets for the protocol's encodings (1 MiB input, direct to a replica) and for the
    router (the demo model), from the cells of this run; a target whose cells were not measured is left out."""
    out = []
    cells, demo = latency.get(wide.name, {}), latency.get(SMALL.name, {})
    for clients in clients_list:
        if f"direct-binary/{clients}" in cells:
            binary, json_cell = cells[f"direct-binary/{clients}"]["rps"], cells[f"direct/{clients}"]["rps"]
            out.append(Target(f"1 MiB FP32, {clients} client(s): binary HTTP throughput >= 5x JSON's",
                              f"{binary:,.1f} vs {json_cell:,.1f} req/s", binary / json_cell, 5.0, "x", True))  # fmt: skip
    if "direct-grpc/1" in cells:
        grpc_p50, binary_p50 = cells["direct-grpc/1"]["p50_ms"], cells["direct-binary/1"]["p50_ms"]
        out.append(Target("1 MiB FP32, 1 client: gRPC p50 <= 1.5x binary HTTP's (direct to the replica)",
                          f"{grpc_p50:.2f} vs {binary_p50:.2f} ms", grpc_p50 / binary_p50, 1.5, "x", False))  # fmt: skip
    if "tritonclient-grpc/1" in cells:
        grpc_p50, http_p50 = cells["tritonclient-grpc/1"]["p50_ms"], cells["tritonclient-http/1"]["p50_ms"]
        out.append(Target("the same with Triton's clients and their defaults: tritonclient.grpc p50 <= 1.5x tritonclient.http's",
                          f"{grpc_p50:.2f} vs {http_p50:.2f} ms", grpc_p50 / http_p50, 1.5, "x", False))  # fmt: skip
    if "router/16" in demo:
        router, direct = demo["router/16"]["rps"], demo["direct/16"]["rps"]
        out.append(Target("demo model, 16 clients: the router keeps >= 90 % of direct throughput (HTTP JSON)",
                          f"{router:,.0f} vs {direct:,.0f} req/s", router / direct, 0.90, "%", True))  # fmt: skip
    return out


def print_targets(targets: list[Target]) -> None:
    print("**Open Inference Protocol targets** (each against its baseline measured in the same run):\n")
    print("| target | measured | value | verdict |\n|---|---|---:|---|")
    for t in targets:
        print(f"| {t.target} | {t.measured} | {t.shown(t.value)} | {'PASS' if t.met else 'FAIL'} |")
    print()


def print_verdicts(results: list[dict]) -> None:
    print("**Router targets** (router against direct-to-replica, from the medians above):\n")
    for v in results:
        shown = f"{v['value']:.1%}" if v["unit"] == "%" else f"{v['value']:+.2f} ms"
        if v["met"]:
            state = "met"
        elif v["unit"] == "%":
            state = f"MISSED by {(TARGET_THROUGHPUT - v['value']) * 100:.1f} points"
        else:
            limit = TARGET_P50_MS if "p50" in v["target"] else TARGET_P99_MS
            state = f"MISSED by {v['value'] - limit:.2f} ms"
        print(f"- {v['model']}, {v['clients']} client(s): {v['target']}: {state} ({shown})")
    print()


# -- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every cell (default 3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell (default 3)")
    parser.add_argument("--clients", default="1,16", help="comma-separated concurrent clients (default 1,16)")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold starts to time (default 5)")
    parser.add_argument("--skip-big", action="store_true", help="only the demo model; no 100 MB model, no cold start")
    parser.add_argument(
        "--skip-encodings", action="store_true", help="no 1 MiB input (JSON vs binary HTTP vs gRPC to a replica)"
    )
    parser.add_argument(
        "--baseline-router",
        type=Path,
        metavar="DIR",
        help="also time the router of the catalog/ package in DIR (another revision), as path router-before",
    )
    parser.add_argument(
        "--baseline-replica",
        type=Path,
        metavar="DIR",
        help="also time the replica of the catalog/ package in DIR (another revision) on the 1 MiB answer, "
        "as paths direct-binary-before and direct-grpc-before",
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    args = parser.parse_args()
    clients_list = [int(c) for c in args.clients.split(",")]
    baseline = args.baseline_router.resolve() if args.baseline_router else None
    if baseline is not None and not (baseline / "catalog" / "serving" / "router.py").is_file():
        sys.exit(f"--baseline-router {baseline}: no catalog/serving/router.py there")
    replica_tree = args.baseline_replica.resolve() if args.baseline_replica else None
    if replica_tree is not None and not (replica_tree / "catalog" / "serving" / "replica.py").is_file():
        sys.exit(f"--baseline-replica {replica_tree}: no catalog/serving/replica.py there")
    cli = modelcat_command()
    print(
        f"Python {platform.python_version()} on {platform.platform()} ({platform.machine()}), "
        f"{os.cpu_count()} cores, onnxruntime {ort.__version__}, onnx {onnx.__version__}, "
        f"{datetime.date.today().isoformat()}.\n"
    )
    results: dict = {"latency": {}, "verdicts": []}
    with tempfile.TemporaryDirectory(prefix="modelcat-serve-") as tmp:
        workdir = Path(tmp)
        row = encode_request("features", np.random.default_rng(1).random((1, 16), dtype=np.float32))
        models = [(SMALL, paths_of(baseline), row)]
        if not args.skip_big:
            print("building the ~100 MB model...", file=sys.stderr, flush=True)
            models.append((big := big_model(workdir), paths_of(baseline, BIG_PATHS), row))
        for model, paths, payload in models:
            cells = bench_model(cli, model, workdir, clients_list, args.seconds, args.repeat, paths, payload, baseline)
            print_latency_table(model, cells, clients_list, args.repeat, args.seconds, paths)
            results["latency"][model.name] = cells
            results["verdicts"] += verdicts(model, cells, clients_list)
        print_verdicts(results["verdicts"])
        print("timing the router over gRPC...", file=sys.stderr, flush=True)
        _, row = request_body(np.random.default_rng(1))
        results["router_grpc"] = bench_router_grpc(cli, SMALL, workdir, row, args.seconds, args.repeat, run_cell)
        print_router_grpc(SMALL, results["router_grpc"], args.repeat, args.seconds)
        wide = wide_model(workdir)
        if not args.skip_encodings:
            megabyte = np.random.default_rng(2).random((256, 1024), dtype=np.float32)
            echo_paths = ECHO_PATHS + (REPLICA_BEFORE if replica_tree else ())
            for model, paths, old in (
                (wide, ENCODING_PATHS, None),
                (wide_model(workdir, echo=True), echo_paths, replica_tree),
            ):
                payload = encode_request("x", megabyte, model)
                cells = bench_model(cli, model, workdir, clients_list, args.seconds, args.repeat, paths, payload,
                                    baseline_replica=old)  # fmt: skip
                print_encoding_table(model, cells, clients_list, args.repeat, args.seconds, paths)
                results["latency"][model.name] = cells
        results["targets"] = [t.__dict__ | {"met": t.met} for t in oip_targets(results["latency"], wide, clients_list)]
        print_targets(oip_targets(results["latency"], wide, clients_list))
        if not args.skip_big:
            print("timing cold starts...", file=sys.stderr, flush=True)
            results["cold_start"] = bench_cold(cli, big, args.cold_runs)
    if args.json:
        meta = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
        meta |= {"date": datetime.datetime.now().isoformat(timespec="seconds"), "repeat": args.repeat}
        meta |= {"seconds": args.seconds, "onnxruntime": ort.__version__}
        args.json.write_text(json.dumps({**meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
