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
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving.replica_fixtures import request_memory

MB = 1 << 20


def measure(encoding: str, target: int, folder: Path) -> dict[str, float]:
    memory = request_memory(encoding, target, folder, settle=0.5)  # the allocator settles after the warm-up
    assert memory.response.status_code == 200, memory.response.text[:300]
    above = memory.peak - memory.idle
    return {"encoding": encoding, "body_mb": memory.body / MB, "rows": len(memory.input),
            "idle_mb": memory.idle / MB, "peak_mb": memory.peak / MB, "above_idle_mb": above / MB,
            "x_body": above / memory.body, "seconds": memory.seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=32)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelcat-bench-") as folder:
        results = [measure(encoding, int(args.megabytes * MB), Path(folder)) for encoding in ("json", "binary")]
    print("| request | body | rows x 1024 FP32 | idle RSS | peak RSS | above idle | x body | time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['encoding']} | {r['body_mb']:.1f} MB | {r['rows']:,} | {r['idle_mb']:.0f} MB | "
              f"{r['peak_mb']:.0f} MB | {r['above_idle_mb']:.0f} MB | {r['x_body']:.1f} | {r['seconds']:.2f} s |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
