"""What the serving benchmark (bench/serve.py) runs: the demo model, a generated ~100 MB one and one
taking 1 MiB of float32 per request, and ``modelcat replica`` / ``modelcat router`` processes
started, read and stopped."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
BIG_HIDDEN = 1_400_000  # float32 weights 16*H + H + H + 1: about 101 MB
BEFORE = "router-before"
UNLOGGED = "router-unlogged"
STICKY = "x-user-id"


@dataclass(frozen=True)
class Model:
    label: str
    name: str
    version: str
    artifact: Path
    digest: str


SMALL = Model(
    "fraud-scorer 1.3.0 (demo, 2.4 KB)",
    "fraud-scorer",
    "1.3.0",
    ROOT / "artifacts/sha256/fb/fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0",
    "sha256:fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0",
)


# -- the ~100 MB model ------------------------------------------------------------------------------


def big_model(folder: Path) -> Model:
    """features[batch, 16] -> MatMul(16 x H) -> Add -> Relu -> MatMul(H x 1) -> Sigmoid, weights inline."""
    rng = np.random.default_rng(0)

    def tensor(name: str, *shape: int) -> TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape, dtype=np.float32) * 0.01), name)

    h = BIG_HIDDEN
    weights = [tensor("w1", 16, h), tensor("b1", h), tensor("w2", h, 1), tensor("b2", 1)]
    nodes = [
        helper.make_node("MatMul", ["features", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["z0"]),
        helper.make_node("Add", ["z0", "b2"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bench-100mb",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelcat-bench")
    model.ir_version = 9
    data = model.SerializeToString()
    path = folder / "model-100mb.onnx"
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Model(f"generated dense model ({len(data) / MB:.0f} MB)", "big-dense", "1.0.0", path, digest)


def wide_model(folder: Path, echo: bool = False) -> Model:
    """``x`` FP32 [batch, 1024] -> ReduceSum -> ``y`` [batch] (bench/request_memory.py's, from the tests'
    fixtures): 256 rows are 1 MiB of input for a few bytes of answer and almost no compute, so the
    encoding is what is timed. ``echo``: Relu instead, so the answer is 1 MiB too."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.serving.replica_fixtures import reduce_model  # imported here, when wanted

    width = 1024

    if echo:
        shape = ["batch", width]
        graph = helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])], "relu",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        )  # fmt: skip
        built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelcat-bench")
        built.ir_version = 9
    else:
        built = reduce_model(width)
    data = built.SerializeToString()
    path = folder / f"model-{'relu' if echo else 'reduce'}.onnx"
    path.write_bytes(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if echo:
        return Model("Relu of 1 MiB of float32 (256 x 1024): 1 MiB each way", "relu-wide", "1.0.0", path, digest)
    return Model("ReduceSum over 1 MiB of float32 (256 x 1024)", "reduce-wide", "1.0.0", path, digest)


# -- processes --------------------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def read_url(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    """The URL from the first 'listening on URL' line of the process's stdout."""
    return url_of(read_line(proc, timeout))


def url_of(line: str) -> str:
    return line.rsplit(" listening on ", 1)[1].split()[0]


def grpc_address_of(line: str) -> str:
    """The HOST:PORT of a listening line's ', gRPC on HOST:PORT,' (``--grpc-port``)."""
    if ", gRPC on " not in line:
        sys.exit(f"no gRPC address on the line {line!r}")
    return line.split(", gRPC on ", 1)[1].split(",", 1)[0]


def read_line(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    """The first line of the process's stdout, once it says 'listening on'; exits if it does not."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    line = box[0] if box else ""
    if " listening on " not in line:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        sys.exit(f"{' '.join(map(str, proc.args))} did not start (exit {proc.poll()}): {line!r}\n{err[-2000:]}")
    return line


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def spawn(args: list[str], stderr: object = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=clean_env())


def replica_args(cli: str, model: Model, grpc: bool = False) -> list[str]:
    return [
        cli, "replica", "--model", model.name, "--version", model.version, "--artifact", str(model.artifact),
        "--digest", model.digest, "--port", "0", *(["--grpc-port", "0"] if grpc else []),
    ]  # fmt: skip


def log_option(tree: Path, where: Path) -> list[str]:
    """The assignment-log option of the router in source ``tree``: a folder since the logs are
    segmented (``--analytics-dir``), one file before (``--assignment-log``)."""
    command = (tree / "catalog" / "cli" / "router_command.py").read_text(encoding="utf-8")
    if "--analytics-dir" in command:
        return ["--analytics-dir", str(where)]
    return ["--assignment-log", str(where.with_suffix(".jsonl"))]


@dataclass(frozen=True)
class Fleet:
    """What ``serving`` started: the replica's URL, the routers' URLs by path name, every pid by
    process name, and the gRPC addresses by process name (``replica`` when asked for)."""

    replica: str
    routers: dict[str, str]
    pids: dict[str, int]
    grpc: dict[str, str] = field(default_factory=dict)
    replica_before: str | None = None  # with ``baseline_replica``: that tree's replica of the same model


@contextmanager
def serving(
    cli: str,
    model: Model,
    workdir: Path,
    baseline: Path | None = None,
    unlogged: bool = False,
    outcomes: dict[str, str] | None = None,
    grpc: bool = False,
    baseline_replica: Path | None = None,
) -> Iterator[Fleet]:
    """One replica of ``model`` and a router in front of it, logging assignments (another with
    ``baseline``: from that source tree; another with ``unlogged``: without the assignment log);
    ``outcomes``: the application's declared outcomes in the table (a label: the logging router
    records each answer's prediction); ``grpc``: the replica also serves gRPC; ``baseline_replica``: a
    second replica of ``model`` from that source tree (``replica-before``), beside the first."""
    replica = spawn(replica_args(cli, model, grpc), stderr=subprocess.DEVNULL)
    router = before = quiet = old_replica = None
    try:
        line = read_line(replica)
        replica_url, grpc_addresses = url_of(line), ({"replica": grpc_address_of(line)} if grpc else {})
        pids, old_url = {"replica": replica.pid}, None
        if baseline_replica is not None:
            args = [sys.executable, "-m", "catalog.cli.main", *replica_args(cli, model, grpc)[1:]]
            old_replica = subprocess.Popen(
                args, cwd=baseline_replica, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                env=clean_env() | {"PYTHONPATH": str(baseline_replica)},
            )  # fmt: skip
            old_line = read_line(old_replica)
            old_url, pids["replica-before"] = url_of(old_line), old_replica.pid
            if grpc:
                grpc_addresses["replica-before"] = grpc_address_of(old_line)
        table = workdir / f"{model.name}.routing.json"
        document = {
            "apiVersion": "modelcat/routing-v1",
            "application": "bench",
            "sticky_key": STICKY,
            **({"outcomes": outcomes} if outcomes else {}),
            "models": [
                {
                    "name": model.name,
                    "routes": [
                        {"version": model.version, "weight": 100, "digest": model.digest, "replicas": [replica_url]}
                    ],
                }
            ],
        }
        table.write_text(json.dumps(document, indent=2), encoding="utf-8")
        analytics = workdir / f"{model.name}.analytics"
        router = spawn(
            [cli, "router", "--table", str(table), "--port", "0", "--analytics-dir", str(analytics)],
            stderr=subprocess.DEVNULL,
        )
        urls = {"router": read_url(router)}
        pids["router"] = router.pid
        if baseline is not None:
            args = [sys.executable, "-m", "catalog.cli.router_command", "--table", str(table), "--port", "0"]
            args += log_option(baseline, workdir / f"{model.name}.before")
            before = subprocess.Popen(
                args, cwd=baseline, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                env=clean_env() | {"PYTHONPATH": str(baseline)},
            )  # fmt: skip
            urls[BEFORE], pids[BEFORE] = read_url(before), before.pid
        if unlogged:
            quiet = spawn([cli, "router", "--table", str(table), "--port", "0"], stderr=subprocess.DEVNULL)
            urls[UNLOGGED], pids[UNLOGGED] = read_url(quiet), quiet.pid
        yield Fleet(replica_url, urls, pids, grpc_addresses, old_url)
    finally:
        for proc in (quiet, before, router, old_replica, replica):
            if proc is not None:
                stop(proc)
