"""The router's overhead over gRPC, for bench/serve.py: one replica serving the demo model over gRPC
(``--grpc-port``) and one router routing gRPC to it (``--grpc-port``, the table's ``grpc_replicas``),
a client sending ``ModelInfer`` (raw contents, as tritonclient.grpc does) back to back, direct to the
replica and through the router, interleaved. Target: the router adds <= 0.5 ms p50 at 1 client.

Baseline, in the same interleaved runs: a bare grpcio passthrough (``passthrough-grpc``: a process
of its own, the router's server options and worker count, forwarding each ModelInfer's bytes and
metadata to the replica over one channel, as the router does, without routing or logging): what one
more gRPC hop in Python costs on this machine, whatever the router does. Run alone as
``python bench/serve_grpc.py passthrough ADDRESS`` it prints its own address and serves until killed."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from serve_fleet import STICKY, Model, replica_args, spawn, stop

from catalog.serving.oip_grpc import SERVICE
from catalog.serving.oip_grpc import inference_pb2 as pb

TARGET_GRPC_P50_MS = 0.5
GRPC_PATHS = ("direct-grpc", "router-grpc", "passthrough-grpc")


def _announced(proc: subprocess.Popen[str], pattern: str, timeout: float = 60.0) -> str:
    """The group of ``pattern`` in the process's first line of stdout (its 'listening' line)."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    found = re.search(pattern, box[0] if box else "")
    if not found:
        proc.kill()
        sys.exit(f"{' '.join(map(str, proc.args))} did not start (exit {proc.poll()}): {box!r}")
    return found.group(1)


@contextmanager
def grpc_serving(cli: str, model: Model, workdir: Path) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    """A replica of ``model`` serving gRPC and a router routing gRPC to it (logging assignments, as
    the HTTP one does); the gRPC addresses and pids, by path name."""
    replica = spawn([*replica_args(cli, model), "--grpc-port", "0"], stderr=subprocess.DEVNULL)
    router = passthrough = None
    try:
        replica_grpc = _announced(replica, r", gRPC on (\S+), listening on ")
        table = workdir / f"{model.name}.grpc-routing.json"
        route = {"version": model.version, "weight": 100, "digest": model.digest, "replicas": ["http://127.0.0.1:1"],
                 "grpc_replicas": [replica_grpc]}  # fmt: skip
        document = {"apiVersion": "modelcat/routing-v1", "application": "bench-grpc", "sticky_key": STICKY,
                    "models": [{"name": model.name, "routes": [route]}]}  # fmt: skip
        table.write_text(json.dumps(document, indent=2), encoding="utf-8")
        analytics = workdir / f"{model.name}.grpc-analytics"
        args = [
            cli,
            "router",
            "--table",
            str(table),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--analytics-dir",
            str(analytics),
        ]
        router = spawn(args, stderr=subprocess.DEVNULL)
        router_grpc = _announced(router, r"\(gRPC on (\S+), table ")
        passthrough = spawn([sys.executable, __file__, "passthrough", replica_grpc], stderr=subprocess.DEVNULL)
        passthrough_grpc = _announced(passthrough, r"^(\S+)$")
        addresses = {"direct-grpc": replica_grpc, "router-grpc": router_grpc, "passthrough-grpc": passthrough_grpc}
        yield addresses, {"replica": replica.pid, "router": router.pid, "passthrough": passthrough.pid}
    finally:
        for proc in (passthrough, router, replica):
            if proc is not None:
                stop(proc)


def grpc_sender(
    address: str, model: Model, row: np.ndarray, thread: int
) -> tuple[Callable[[int], None], Callable[[], None]]:
    """One channel; each ModelInfer carries ``row`` as raw contents and a distinct sticky key."""
    channel = grpc.insecure_channel(address)
    infer = channel.unary_unary(
        f"/{SERVICE}/ModelInfer",
        request_serializer=pb.ModelInferRequest.SerializeToString,
        response_deserializer=pb.ModelInferResponse.FromString,
    )
    request = pb.ModelInferRequest(model_name=model.name)
    request.inputs.add(name="features", datatype="FP32", shape=list(row.shape))
    request.raw_input_contents.append(row.astype("<f4").tobytes())

    def send(n: int) -> None:
        answer = infer(request, metadata=((STICKY, f"user-{thread}-{n}"),), timeout=60)
        if answer.model_version != model.version or not answer.raw_output_contents:
            raise RuntimeError(f"{address}: unexpected answer {answer}")

    return send, channel.close


def bench_router_grpc(
    cli: str, model: Model, workdir: Path, row: np.ndarray, seconds: float, repeat: int, run_cell: Callable[..., dict]
) -> dict[str, Any]:
    """Direct and router gRPC cells at 1 client, ``repeat`` times interleaved (``run_cell``: serve.py's);
    the medians and the verdict."""
    runs: dict[str, list[dict]] = {path: [] for path in GRPC_PATHS}
    with grpc_serving(cli, model, workdir) as (addresses, pids):
        for rep in range(repeat):
            for path in GRPC_PATHS[rep % 2 :] + GRPC_PATHS[: rep % 2]:
                print(f"  {model.name}: rep {rep + 1}, 1 client, {path}", file=sys.stderr, flush=True)
                make = lambda i, a=addresses[path]: grpc_sender(a, model, row, i)
                runs[path].append(run_cell(make, 1, seconds, pids))
    cells = {
        p: {m: statistics.median(r[m] for r in reps) for m in ("p50_ms", "p99_ms", "rps")} for p, reps in runs.items()
    }
    added = cells["router-grpc"]["p50_ms"] - cells["direct-grpc"]["p50_ms"]
    hop = cells["passthrough-grpc"]["p50_ms"] - cells["direct-grpc"]["p50_ms"]
    return {"cells": cells, "runs": runs, "added_p50_ms": added, "hop_p50_ms": hop, "met": added <= TARGET_GRPC_P50_MS}


def print_router_grpc(model: Model, result: dict[str, Any], repeat: int, seconds: float) -> None:
    cells, added = result["cells"], result["added_p50_ms"]
    print(f"### Router over gRPC, {model.label}: medians of {repeat} interleaved runs of {seconds:g} s, 1 client\n")
    print("| path | p50 (ms) | p99 (ms) | throughput (req/s) |\n|---|---:|---:|---:|")
    for path in GRPC_PATHS:
        c = cells[path]
        print(f"| {path} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {c['rps']:,.0f} |")
    state = "PASS" if result["met"] else f"FAIL (by {added - TARGET_GRPC_P50_MS:.2f} ms)"
    print("\n| target | value | verdict |\n|---|---:|---|")
    print(f"| router over gRPC adds <= {TARGET_GRPC_P50_MS:g} ms p50 at 1 client | {added:+.2f} ms | {state} |")
    hop = result["hop_p50_ms"]
    print(
        f"| baseline: a bare grpcio passthrough adds | {hop:+.2f} ms | the router's own share {added - hop:+.2f} ms |\n"
    )


def passthrough(target: str) -> None:
    """Forward each ModelInfer to ``target`` as bytes, with the caller's metadata (the baseline)."""
    from catalog.serving.listen import start_grpc_server

    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", -1)])
    infer = channel.unary_unary(f"/{SERVICE}/ModelInfer")

    def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = [(k, v) for k, v in context.invocation_metadata() if k not in ("user-agent", "te")]
        return infer(request, timeout=60, metadata=metadata)

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"ModelInfer": grpc.unary_unary_rpc_method_handler(forward)}
    )
    server, port = start_grpc_server(handler, "127.0.0.1", 0, max_message_bytes=64 << 20, workers=64,
                                     thread_name="passthrough")  # fmt: skip
    print(f"127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    passthrough(sys.argv[2]) if sys.argv[1:2] == ["passthrough"] else sys.exit(__doc__)
