"""Real replica processes for tests: start one on a loopback port, wait until ready, stop it.

Reusable by any test that needs a replica (the router tests too)::

    with start_replica("fraud-scorer", "1.3.0", FRAUD.artifact, FRAUD.digest) as (url, process):
        httpx.get(f"{url}/v2/health/ready")

Port ``None`` (the default) lets the replica bind port 0 and reads the URL from the line it
prints once listening, so there is no window in which another process can take the port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import grpc
import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.oip_grpc.inference_pb2_grpc import GRPCInferenceServiceStub

__all__ = [
    "CLIENT_DATATYPES",
    "CLIENT_FEEDS",
    "DATATYPE_FEEDS",
    "FRAUD",
    "DemoArtifact",
    "ReplicaExited",
    "ReplicaProcess",
    "RequestMemory",
    "RunningReplica",
    "assert_same_tensor",
    "client_types_model",
    "fraud_replica",
    "free_port",
    "grpc_address",
    "reduce_model",
    "reduce_request",
    "replica_command",
    "request_memory",
    "run_in_process",
    "serve_command",
    "single_type_model",
    "slow_model",
    "start_replica",
    "status_kb",
    "stop_replica",
    "triton_inputs",
    "types_model",
    "write_model",
]

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL


@dataclass(frozen=True)
class DemoArtifact:
    model: str
    version: str
    artifact: Path
    digest: str


FRAUD = DemoArtifact(
    "fraud-scorer",
    "1.3.0",
    ROOT / "artifacts/sha256/fb/fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0",
    "sha256:fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0",
)


class ReplicaExited(RuntimeError):
    """The replica process ended before it was ready."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        super().__init__(f"replica exited with {returncode} before it was ready:\n{stderr}")


class ReplicaProcess(subprocess.Popen[str]):
    """A replica's process; its stdout lines are collected, its stderr goes to a temp file."""

    def __init__(self, args: Sequence[str], **kwargs: Any) -> None:
        self._stderr_file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115  (read after exit)
        super().__init__(args, stdout=subprocess.PIPE, stderr=self._stderr_file, text=True, **kwargs)
        self.lines: list[str] = []
        self.listening = threading.Event()
        self.url: str | None = None
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        assert self.stdout is not None
        for line in self.stdout:
            self.lines.append(line)
            if self.url is None and " listening on " in line:
                self.url = line.rsplit(" listening on ", 1)[1].strip()
                self.listening.set()
        self.listening.set()  # end of output: wake a waiter so it notices the exit

    def stdout_text(self) -> str:
        return "".join(self.lines)

    def stderr_text(self) -> str:
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode("utf-8", "replace")


class RunningReplica(NamedTuple):
    url: str
    process: ReplicaProcess


def free_port() -> int:
    """A port free at the time of the call (for tests that must name the port in advance)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def replica_command(
    model: str, version: str, artifact: Path, digest: str, port: int = 0, extra: Sequence[str] = ()
) -> list[str]:
    return [
        sys.executable, "-m", "catalog.cli.replica_command",
        "--model", model, "--version", version, "--artifact", str(artifact), "--digest", digest,
        "--port", str(port), "--host", "127.0.0.1", *extra,
    ]  # fmt: skip


def serve_command(model: str, version: str, artifact: Path, digest: str, extra: Sequence[str] = ()) -> list[str]:
    """`modelcat serve` (the SageMaker container's entrypoint) told by options what to serve, on a free
    loopback port."""
    return [
        sys.executable, "-m", "catalog.cli.main", "serve",
        "--model", model, "--version", version, "--artifact", str(artifact), "--digest", digest,
        "--port", "0", "--host", "127.0.0.1", *extra,
    ]  # fmt: skip


def stop_replica(process: subprocess.Popen[str], timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _wait_ready(process: ReplicaProcess, deadline: float) -> str:
    process.listening.wait(max(0.0, deadline - time.monotonic()))
    if process.url is None:
        if process.poll() is None:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stop_replica(process)
                raise TimeoutError(f"replica did not listen in time:\n{process.stderr_text()}") from None
        process._reader.join(5)
        raise ReplicaExited(process.returncode, process.stdout_text(), process.stderr_text())
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{process.url}/v2/health/ready").status_code == 200:
                    return process.url
            if process.poll() is not None:
                raise ReplicaExited(process.returncode, process.stdout_text(), process.stderr_text())
            time.sleep(0.05)
    stop_replica(process)
    raise TimeoutError(f"replica at {process.url} never became ready:\n{process.stderr_text()}")


@contextlib.contextmanager
def start_replica(
    model: str,
    version: str,
    artifact: Path,
    digest: str,
    port: int | None = None,
    *,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
    sagemaker: bool = False,
) -> Iterator[RunningReplica]:
    """Run ``modelcat replica`` (``sagemaker``: ``modelcat serve``) in a subprocess; yield
    ``(url, process)`` once /v2/health/ready answers 200; stop it afterwards (SIGTERM, then SIGKILL).
    Raises ReplicaExited if the process ends first (for instance on a digest mismatch)."""
    if sagemaker:
        command = serve_command(model, version, artifact, digest, extra_args)
    else:
        command = replica_command(model, version, artifact, digest, port or 0, extra_args)
    process = ReplicaProcess(command, cwd=ROOT)
    try:
        url = _wait_ready(process, time.monotonic() + timeout)
        yield RunningReplica(url, process)
    finally:
        stop_replica(process)
        process._reader.join(5)


def grpc_address(running: RunningReplica) -> str:
    """The HOST:PORT a replica started with ``--grpc-port`` serves gRPC on (from its first line)."""
    found = re.search(r", gRPC on (\S+), listening on ", running.process.stdout_text())
    if found is None:
        raise AssertionError(f"the replica names no gRPC address:\n{running.process.stdout_text()}")
    return found.group(1)


@pytest.fixture(scope="module")
def fraud_replica() -> Iterator[RunningReplica]:
    """A replica of the demo catalog's fraud-scorer 1.3.0, shared by one test module."""
    with start_replica(FRAUD.model, FRAUD.version, FRAUD.artifact, FRAUD.digest) as running:
        yield running


def types_model() -> onnx.ModelProto:
    """One input per datatype under test, each passed to an output of its own:
    flags BOOL [n] -> Not; words STRING [n] -> Identity; counts INT64 [batch, 2] -> doubled;
    small INT32 [3] -> Identity; wide FP64 [n] -> Identity."""
    T = TensorProto
    inputs = [
        helper.make_tensor_value_info("flags", T.BOOL, ["f"]),
        helper.make_tensor_value_info("words", T.STRING, ["w"]),
        helper.make_tensor_value_info("counts", T.INT64, ["batch", 2]),
        helper.make_tensor_value_info("small", T.INT32, [3]),
        helper.make_tensor_value_info("wide", T.DOUBLE, ["d"]),
    ]
    outputs = [
        helper.make_tensor_value_info("not_flags", T.BOOL, ["f"]),
        helper.make_tensor_value_info("words_out", T.STRING, ["w"]),
        helper.make_tensor_value_info("doubled", T.INT64, ["batch", 2]),
        helper.make_tensor_value_info("small_out", T.INT32, [3]),
        helper.make_tensor_value_info("wide_out", T.DOUBLE, ["d"]),
    ]
    nodes = [
        helper.make_node("Not", ["flags"], ["not_flags"]),
        helper.make_node("Identity", ["words"], ["words_out"]),
        helper.make_node("Add", ["counts", "counts"], ["doubled"]),
        helper.make_node("Identity", ["small"], ["small_out"]),
        helper.make_node("Identity", ["wide"], ["wide_out"]),
    ]
    return _model(helper.make_graph(nodes, "types", inputs, outputs))


def client_types_model() -> onnx.ModelProto:
    """The datatypes the third-party clients are tested with, each input to an output of its own:
    x FP32 [batch, 4] -> x + x; h FP16 [n] -> h + h; c INT64 [m] -> c + c; s STRING [k] -> Identity;
    b BOOL [j] -> Not."""
    T = TensorProto
    kinds = [("x", T.FLOAT, ["batch", 4]), ("h", T.FLOAT16, ["n"]), ("c", T.INT64, ["m"]),
             ("s", T.STRING, ["k"]), ("b", T.BOOL, ["j"])]  # fmt: skip
    inputs = [helper.make_tensor_value_info(name, kind, dims) for name, kind, dims in kinds]
    outputs = [helper.make_tensor_value_info(f"{name}_out", kind, dims) for name, kind, dims in kinds]
    nodes = [helper.make_node("Add", [name, name], [f"{name}_out"]) for name in ("x", "h", "c")]
    nodes += [helper.make_node("Identity", ["s"], ["s_out"]), helper.make_node("Not", ["b"], ["b_out"])]
    return _model(helper.make_graph(nodes, "client_types", inputs, outputs))


# The client_types_model's inputs, with values that test each datatype's edges, and their datatypes.
CLIENT_DATATYPES = {"x": "FP32", "h": "FP16", "c": "INT64", "s": "BYTES", "b": "BOOL"}
CLIENT_FEEDS = {
    "x": np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32),
    "h": np.array([0.5, -2.25, 1000.0, 6e-5], dtype=np.float16),
    "c": np.array([-(2**40), 7, 0], dtype=np.int64),
    "s": np.array(["ünïcode", "", "x" * 300], dtype=object),
    "b": np.array([True, False]),
}


def triton_inputs(feeds: dict[str, np.ndarray] | None = None) -> list[Any]:
    """``feeds`` (default CLIENT_FEEDS) as tritonclient.http inputs, set as its defaults set them
    (binary data)."""
    import tritonclient.http as httpclient
    from tritonclient.utils import np_to_triton_dtype

    inputs = []
    for name, array in (CLIENT_FEEDS if feeds is None else feeds).items():
        tensor = httpclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)  # binary_data=True: tritonclient's default
        inputs.append(tensor)
    return inputs


def single_type_model(datatype: str) -> onnx.ModelProto:
    """One input x [batch, 3] of ``datatype`` (FP32, FP16, INT64 or BYTES) and one output y of the
    same: x + x for numbers, x itself for BYTES."""
    kind = {"FP32": TensorProto.FLOAT, "FP16": TensorProto.FLOAT16, "INT64": TensorProto.INT64,
            "BYTES": TensorProto.STRING}[datatype]  # fmt: skip
    node = (
        helper.make_node("Identity", ["x"], ["y"])
        if datatype == "BYTES"
        else helper.make_node("Add", ["x", "x"], ["y"])
    )
    graph = helper.make_graph(
        [node],
        f"single_{datatype.lower()}",
        [helper.make_tensor_value_info("x", kind, ["batch", 3])],
        [helper.make_tensor_value_info("y", kind, ["batch", 3])],
    )
    return _model(graph)


# single_type_model's input per datatype, with values at each datatype's edges.
DATATYPE_FEEDS = {
    "FP32": np.array([[0.1, -0.0, 1e-40], [3.0e38 / 4, -1.5, np.pi]], dtype=np.float32),
    "FP16": np.array([[0.5, -2.25, 1000.0], [6e-5, -0.0, 16000.0]], dtype=np.float16),
    "INT64": np.array([[-(2**40), 7, 0], [2**61, -1, 1]], dtype=np.int64),
    "BYTES": np.array([["ünïcode", "", "x" * 300], ["a\x00b", '{"json": 1}', "€"]], dtype=object),
}


def run_in_process(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of the model at ``path``, computed by onnxruntime in this process."""
    session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def assert_same_tensor(name: str, got: np.ndarray, want: np.ndarray) -> None:
    """Equal datatype, shape and values; strings compare as text (clients give the bytes sent)."""
    if want.dtype == object:
        assert got.shape == want.shape, name
        text = [item.decode() if isinstance(item, bytes) else item for item in got.reshape(-1)]
        assert text == want.reshape(-1).tolist(), name
        return
    assert got.dtype == want.dtype and got.shape == want.shape, name
    assert np.array_equal(got, want), name


def slow_model(size: int = 256) -> onnx.ModelProto:
    """x FP32 [batch, size], iterations INT64 [] -> y FP32 [batch, size]: a request whose running time
    the caller sets with small JSON. A [size, size] state, starting from an initializer, goes
    through ``tanh(. @ W)`` ``iterations`` times; y = x @ state."""
    rng = np.random.default_rng(7)
    weight = numpy_helper.from_array((rng.standard_normal((size, size)) / size**0.5).astype(np.float32), "w")
    start = numpy_helper.from_array(np.eye(size, dtype=np.float32), "s0")
    square = [size, size]
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("MatMul", ["s_in", "w"], ["mm"]),
            helper.make_node("Tanh", ["mm"], ["s_out"]),
        ],
        "step",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("s_in", TensorProto.FLOAT, square),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("s_out", TensorProto.FLOAT, square),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Loop", ["iterations", "", "s0"], ["state"], body=body),
            helper.make_node("MatMul", ["x", "state"], ["y"]),
        ],
        "slow",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", size]),
            helper.make_tensor_value_info("iterations", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", size])],
        [weight, start],
    )
    return _model(graph)


def reduce_model(width: int = 1024) -> onnx.ModelProto:
    """x FP32 [batch, width] -> ReduceSum over axis 1 -> y FP32 [batch]: a large request, a small answer."""
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
        "reduce",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])],
        [axes],
    )
    return _model(graph)


def reduce_request(encoding: str, size: int, width: int = 1024) -> tuple[bytes, dict[str, str], np.ndarray]:
    """A request for ``reduce_model`` of about ``size`` bytes, its headers and its input: random float32
    rows, as JSON (flat ``data``, the values as ``json`` writes them) or in the binary tensor extension."""
    if encoding == "json":
        row = json.dumps(np.random.default_rng(0).standard_normal(width).astype(np.float32).tolist())
        rows = max(1, size // (len(row) + 1))
    else:
        rows = max(1, size // (4 * width))
    x = np.random.default_rng(1).standard_normal((rows, width)).astype("<f4")
    entry: dict[str, Any] = {"name": "x", "datatype": "FP32", "shape": [rows, width]}
    if encoding == "json":
        entry["data"] = x.reshape(-1).tolist()
        return json.dumps({"inputs": [entry]}).encode(), {"content-type": "application/json"}, x
    entry["parameters"] = {"binary_data_size": x.nbytes}
    header = json.dumps({"inputs": [entry]}).encode()
    headers = {"Inference-Header-Content-Length": str(len(header)), "content-type": "application/octet-stream"}
    return header + x.tobytes(), headers, x


class RequestMemory(NamedTuple):
    """A replica's resident memory around one request: ``idle`` after a small first one, ``peak`` its
    high-water mark after the request (bytes); the request's size, input, time and answer (``y``)."""

    idle: int
    peak: int
    body: int
    input: np.ndarray
    seconds: float
    answer: np.ndarray


def request_memory(encoding: str, size: int, folder: Path, settle: float = 0.0) -> RequestMemory:
    """Run a fresh replica of ``reduce_model`` (the high-water mark is per process), warm it up with a
    small request, then send one of about ``size`` bytes: ``reduce_request``'s JSON or binary over
    HTTP, or ``grpc``, a ModelInfer with the input in ``raw_input_contents``; ``grpc-floor``: the same
    to a bare gRPC server instead (``tests.serving.grpc_floor``; its answer is empty). ``settle``:
    seconds to wait before reading the idle RSS (a benchmark's reading; tests leave it 0)."""
    from tests.serving.grpc_floor import start_grpc_floor

    artifact, digest = write_model(reduce_model(), folder / "reduce.onnx")
    body, headers, x = reduce_request("json" if encoding == "json" else "binary", size)
    small, small_headers, _ = reduce_request("json" if encoding == "json" else "binary", 1)
    limit = len(body) + (1 << 20)
    extra = ["--max-request-bytes", str(limit), "--grpc-port", "0"]
    if encoding == "grpc-floor":
        server: contextlib.AbstractContextManager[Any] = start_grpc_floor(limit)
    else:
        server = start_replica("reduce", "1.0.0", artifact, digest, extra_args=extra)
    with server as running:
        url, process = running
        if encoding == "grpc-floor":
            send = _grpc_sender(url)
        elif encoding == "grpc":
            send = _grpc_sender(grpc_address(running))
        else:
            send = _http_sender(f"{url}/v2/models/reduce/infer", {len(body): headers, len(small): small_headers})
        send(small)
        time.sleep(settle)
        idle = status_kb(process.pid, "VmRSS")
        started = time.perf_counter()
        answer = send(body)
        seconds = time.perf_counter() - started
        peak = status_kb(process.pid, "VmHWM")
    return RequestMemory(idle * 1024, peak * 1024, len(body), x, seconds, answer)


def _http_sender(infer: str, headers: dict[int, dict[str, str]]) -> Callable[[bytes], np.ndarray]:
    """POST a ``reduce_request`` body (its headers by its length); ``y`` from the JSON answer."""
    client = httpx.Client(timeout=300, trust_env=False)

    def send(body: bytes) -> np.ndarray:
        response = client.post(infer, content=body, headers=headers[len(body)])
        assert response.status_code == 200, response.text[:300]
        return np.array(response.json()["outputs"][0]["data"], dtype=np.float32)

    return send


def _grpc_sender(address: str) -> Callable[[bytes], np.ndarray]:
    """ModelInfer with the input of a binary ``reduce_request`` body as raw contents; ``y``."""
    stub = GRPCInferenceServiceStub(grpc.insecure_channel(address))

    def send(body: bytes) -> np.ndarray:
        header = json.loads(body[: body.index(b"}]}") + 3])["inputs"][0]
        request = pb.ModelInferRequest(model_name="reduce")
        request.inputs.add(name="x", datatype="FP32", shape=header["shape"])
        request.raw_input_contents.append(body[-header["parameters"]["binary_data_size"] :])
        response = stub.ModelInfer(request, timeout=300)
        return np.frombuffer(response.raw_output_contents[0], dtype="<f4")

    return send


def status_kb(pid: int | str, field: str) -> int:
    """``field`` of /proc/``pid``/status (``pid`` "self": this process), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelcat-tests")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def write_model(model: onnx.ModelProto, path: Path) -> tuple[Path, str]:
    """Save ``model`` at ``path``; return the path and its digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    path.write_bytes(data)
    return path, "sha256:" + hashlib.sha256(data).hexdigest()
