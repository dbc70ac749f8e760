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

``grpc-floor``, the baseline of the grpc row in the same run: the same message to a bare grpcio
server with the replica's options whose handler reads nothing of it (tests/serving/grpc_floor.py):
what grpcio itself holds while it receives a message, which no handler can lower.

Then the two JSON decoders in the same run, in process: before (``oip.parse_request``: ``json.loads``
of the whole body) and after (``oip_json.parse_request_bounded``, the replica's: large data arrays
read in pieces). Their median time per decoding, alternating calls, for the demo model's request
(16 FP32 values), 1 MB and the large body (flat, and nested as [rows, 1024]), in CPU seconds; and the
peak RSS above idle of one decoding of each large body in a fresh process each (``--decode``, the
best of two).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalog.serving.oip import TensorMeta, parse_request
from catalog.serving.oip_json import parse_request_bounded
from tests.serving.replica_fixtures import reduce_request, request_memory, status_kb

MB = 1 << 20
ENCODINGS = ("json", "binary", "grpc", "grpc-floor")
DECODERS: dict[str, Callable[..., object]] = {"before": parse_request, "after": parse_request_bounded}
OUTPUT = [TensorMeta("y", "FP32", ("batch",))]


def measure(encoding: str, target: int, folder: Path) -> dict[str, float]:
    memory = request_memory(encoding, target, folder, settle=0.5)  # the allocator settles after the warm-up
    above = memory.peak - memory.idle
    return {"encoding": encoding, "body_mb": memory.body / MB, "rows": len(memory.input),
            "idle_mb": memory.idle / MB, "peak_mb": memory.peak / MB, "above_idle_mb": above / MB,
            "x_body": above / memory.body, "seconds": memory.seconds}  # fmt: skip


def inputs_for(width: int) -> list[TensorMeta]:
    return [TensorMeta("x", "FP32", ("batch", width))]


def decode_in_fresh_process(decoder: str, body: Path) -> dict[str, float]:
    """Peak RSS above idle and time of one decoding of ``body``, in a process of its own (``--decode``)."""
    command = [sys.executable, __file__, "--decode", decoder, "--body", str(body)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def decode_here(decoder: str, path: Path) -> None:
    """``--decode``: decode the body at ``path`` once after a warm-up; print its memory and time."""
    body, parse, inputs = path.read_bytes(), DECODERS[decoder], inputs_for(1024)
    parse(reduce_request("json", 1)[0], inputs, OUTPUT)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    idle, started = status_kb("self", "VmRSS"), time.perf_counter()
    parse(body, inputs, OUTPUT)
    seconds = time.perf_counter() - started
    print(json.dumps({"above": (status_kb("self", "VmHWM") - idle) * 1024, "seconds": seconds}))


def decoder_times(body: bytes, width: int, calls: int) -> dict[str, float]:
    """Median CPU seconds of one decoding of ``body`` for each decoder: ``calls`` each, alternating.
    CPU time, not wall-clock: on a shared machine the other processes' load is not the decoder's."""
    times: dict[str, list[float]] = {name: [] for name in DECODERS}
    for i in range(calls):
        for name in list(DECODERS)[i % 2 :] + list(DECODERS)[: i % 2]:
            started = time.process_time()
            DECODERS[name](body, inputs_for(width), OUTPUT)
            times[name].append(time.process_time() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def compare_decoders(target: int, folder: Path) -> list[dict[str, Any]]:
    """The JSON decoders before and after (``DECODERS``) on the same bodies: the demo model's request
    size (16 floats), 1 MB and ``target`` bytes (flat ``data``, and nested as [rows, 1024]) for time
    and, the large ones, memory."""
    small = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16],
                                    "data": [0.1 * i for i in range(16)]}]}).encode()  # fmt: skip
    mid, (large, _, x) = reduce_request("json", MB)[0], reduce_request("json", target)
    nested = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                                     "data": x.tolist()}]}).encode()  # fmt: skip
    rows: list[dict[str, Any]] = []
    for label, body, width, calls, unit in [
        ("time, the demo model's request (16 FP32)", small, 16, 20000, 1e-6),
        ("time, 1 MB", mid, 1024, 15, 1e-3),
        (f"time, {len(large) / MB:.0f} MB", large, 1024, 5, 1.0),
        (f"time, {len(nested) / MB:.0f} MB nested", nested, 1024, 5, 1.0),
    ]:
        times = decoder_times(body, width, calls)
        rows.append({"what": label, "bytes": len(body), "unit": unit} | times)
    for label, body in [("", large), (" nested", nested)]:
        path = folder / "large.json"
        path.write_bytes(body)
        memory = {name: [decode_in_fresh_process(name, path) for _ in range(2)] for name in DECODERS}
        rows.append({"what": f"peak RSS above idle, {len(body) / MB:.0f} MB{label}", "bytes": len(body), "unit": MB}
                    | {name: min(r["above"] for r in runs) for name, runs in memory.items()})  # fmt: skip
    return rows


def print_decoders(rows: list[dict[str, Any]]) -> None:
    units = {1e-6: "us", 1e-3: "ms", 1.0: "s", MB: "MB"}
    print("| JSON decoding, in process | before: `json.loads` whole | after: in pieces | after / before |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        unit, before, after, size = row["unit"], row["before"], row["after"], row["bytes"]
        extra = f" ({before / size:.1f}x, {after / size:.1f}x body)" if unit == MB else ""
        digits = 0 if unit == MB else 2
        print(f"| {row['what']} | {before / unit:,.{digits}f} {units[unit]} | "
              f"{after / unit:,.{digits}f} {units[unit]} | {after / before:.2f}{extra} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=32)
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--decode", choices=list(DECODERS), help=argparse.SUPPRESS)  # one decoding, in this process
    parser.add_argument("--body", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode:
        decode_here(args.decode, args.body)
        return
    with tempfile.TemporaryDirectory(prefix="modelcat-bench-") as folder:
        results = [measure(encoding, int(args.megabytes * MB), Path(folder)) for encoding in ENCODINGS]
        decoders = compare_decoders(int(args.megabytes * MB), Path(folder))
    print("| request | body | rows x 1024 FP32 | idle RSS | peak RSS | above idle | x body | time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['encoding']} | {r['body_mb']:.1f} MB | {r['rows']:,} | {r['idle_mb']:.0f} MB | "
              f"{r['peak_mb']:.0f} MB | {r['above_idle_mb']:.0f} MB | {r['x_body']:.1f} | {r['seconds']:.2f} s |")  # fmt: skip
    print()
    print_decoders(decoders)
    if args.json:
        args.json.write_text(json.dumps({"replica": results, "decoders": decoders}, indent=2) + "\n")


if __name__ == "__main__":
    main()
