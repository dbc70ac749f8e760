"""Benchmark a replica's memory per request: peak RSS above idle for one large request, JSON vs binary.

Run from the repository root:

    .venv/bin/python bench/request_memory.py [--megabytes 32] [--json results.json]

For each encoding a fresh ``modelcat replica`` serves a generated model (``x`` FP32 [batch, 1024] ->
ReduceSum over axis 1 -> ``y`` [batch], so the answer stays small), takes one small request to warm
up, and its idle RSS is read from /proc (VmRSS). Then one request of about --megabytes bytes is sent:
JSON (a flat ``data`` array of random float32 values written by ``json``) or the binary tensor data
extension (the raw little-endian floats after the JSON header). The peak RSS (VmHWM, the kernel's
high-water mark, so a fresh process per encoding) minus the idle RSS is the cost of that request; it
is printed in MB and as a multiple of the body's size N. The issue's target: at most ~2 x N.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving.replica_fixtures import start_replica

WIDTH = 1024
MB = 1 << 20


def reduce_model() -> onnx.ModelProto:
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
        "reduce",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])],
        [axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelcat-bench")
    model.ir_version = 9
    return model


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def json_body(target: int) -> tuple[bytes, dict[str, str], int]:
    """A JSON request of about ``target`` bytes (rows of WIDTH random floats), and its row count."""
    row = json.dumps(np.random.default_rng(0).standard_normal(WIDTH).astype(np.float32).tolist())
    rows = max(1, target // (len(row) + 1))
    x = np.random.default_rng(1).standard_normal((rows, WIDTH)).astype(np.float32)
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, WIDTH],
                                   "data": x.reshape(-1).tolist()}]}).encode()  # fmt: skip
    return body, {"content-type": "application/json"}, rows


def binary_body(target: int) -> tuple[bytes, dict[str, str], int]:
    rows = max(1, target // (4 * WIDTH))
    x = np.random.default_rng(1).standard_normal((rows, WIDTH)).astype("<f4")
    header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, WIDTH],
                                     "parameters": {"binary_data_size": x.nbytes}}]}).encode()  # fmt: skip
    headers = {"Inference-Header-Content-Length": str(len(header)), "content-type": "application/octet-stream"}
    return header + x.tobytes(), headers, rows


def measure(path: Path, digest: str, encoding: str, target: int) -> dict[str, float]:
    body, headers, rows = (json_body if encoding == "json" else binary_body)(target)
    small, small_headers, _ = (json_body if encoding == "json" else binary_body)(4 * WIDTH * 4)
    limit = ["--max-request-bytes", str(len(body) + MB)]
    with start_replica("reduce", "1.0.0", path, digest, extra_args=limit) as (url, process):
        infer = f"{url}/v2/models/reduce/infer"
        with httpx.Client(timeout=300, trust_env=False) as client:
            assert client.post(infer, content=small, headers=small_headers).status_code == 200
            time.sleep(0.5)  # let the allocator settle after the warm-up (a reading, not a test)
            idle = status_kb(process.pid, "VmRSS")
            started = time.perf_counter()
            response = client.post(infer, content=body, headers=headers)
            seconds = time.perf_counter() - started
            assert response.status_code == 200, response.text[:300]
        peak = status_kb(process.pid, "VmHWM")
    above = (peak - idle) * 1024
    return {"encoding": encoding, "body_mb": len(body) / MB, "rows": rows, "idle_mb": idle / 1024,
            "peak_mb": peak / 1024, "above_idle_mb": above / MB, "x_body": above / len(body),
            "seconds": seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=32)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelcat-bench-") as folder:
        path = Path(folder) / "reduce.onnx"
        data = reduce_model().SerializeToString()
        path.write_bytes(data)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        results = [measure(path, digest, encoding, int(args.megabytes * MB)) for encoding in ("json", "binary")]
    print("| request | body | rows x 1024 FP32 | idle RSS | peak RSS | above idle | x body | time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['encoding']} | {r['body_mb']:.1f} MB | {r['rows']:,} | {r['idle_mb']:.0f} MB | "
              f"{r['peak_mb']:.0f} MB | {r['above_idle_mb']:.0f} MB | {r['x_body']:.1f} | {r['seconds']:.2f} s |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
