"""Benchmark artifact hashing and `modelcat verify`: throughput, peak memory, wall time.

Run from the repository root with ``make bench``, or:

    .venv/bin/python bench/hash.py [--repeat 3] [--skip-2gb] [--json results.json]

Three measurements, each printed as a Markdown table, with a verdict where there is a target:

  1. sha256 of a 1 GiB file: ``catalog.artifacts.hashing.hash_file`` against
     ``hashlib.file_digest(f, "sha256")``, interleaved, median of --repeat runs. The file is read
     once before timing, so both read it from the page cache alike. Target: >= 90 % of the
     baseline's throughput. For reference, sha256 of bytes already in memory (no read at all).
  2. Peak RSS of ``modelcat verify`` on a 2 GB artifact: a real ONNX model whose single
     initializer (2.0 GB of float32) lives in external data ``weights.bin``, laid out as the local
     store lays out a multi-file artifact. The weights are written in 64 MiB chunks, never held in
     memory. RSS from ``/usr/bin/time -v`` (else getrusage in a dedicated child). Target: < 200 MB.
     For contrast, a 200 MB single-file model (weights inline in model.onnx).
  3. ``modelcat verify`` wall time on the demo catalog (models.yaml) and on a generated catalog of
     100 single-file ONNX artifacts of 20 MB each, with ``modelcat --help`` (start-up alone).

Every generated file is fsynced, so it sits in the page cache, clean, when timed. Temporary files
(at most ~2 GB at a time) are deleted as soon as their section is done.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate import modelcat_command, time_interleaved

from catalog.artifacts.hashing import CHUNK, hash_file, manifest_digest
from catalog.artifacts.stores.local import blob_path
from catalog.validate import validate_file

ROOT = Path(__file__).resolve().parent.parent
MB, GIB, BLOCK = 1_000_000, 1 << 30, 64 << 20
TARGET_RATIO, TARGET_RSS_MB = 0.90, 200
BIG_SHAPE, INLINE_SHAPE = (1000, 500_000), (1000, 50_000)  # float32: 2.0 GB, 200 MB
SMALL_SHAPE, N_SMALL = (1000, 5_000), 100  # float32: 20 MB
LABELS = {
    "external": "2 GB: model.onnx + weights.bin (external data)",
    "inline": "for contrast: 200 MB model.onnx, weights inline",
    "demo": "demo `models.yaml`",
    "many": f"generated, {N_SMALL} x 20 MB single files",
    "startup": "start-up alone (`modelcat --help`)",
}
WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print('Maximum resident set size (kbytes):', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
    " file=sys.stderr)\nsys.exit(code)\n"
)


def write_random(path: Path, size: int) -> None:
    """``size`` bytes of one random 64 MiB block repeated; fsynced."""
    block = memoryview(os.urandom(BLOCK))
    with open(path, "wb") as f:
        f.writelines(block[: min(BLOCK, size - start)] for start in range(0, size, BLOCK))
        f.flush()
        os.fsync(f.fileno())


def matmul_model(weights: TensorProto) -> onnx.ModelProto:
    """y[batch, m] = x[batch, k] @ w[k, m]."""
    k, m = weights.dims
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", m])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelcat-bench")
    model.ir_version = 9
    return model


def entry(name: str, uri: str, digest: str, size: int, shape: tuple[int, int]) -> str:
    return f"""  - name: {name}
    owner: bench@example.com
    task: classification
    versions:
      - version: 1.0.0
        artifact: {{uri: {uri}, digest: "{digest}", size_bytes: {size}}}
        signature:
          inputs: [{{name: x, dtype: float32, shape: [batch, {shape[0]}]}}]
          outputs: [{{name: y, dtype: float32, shape: [batch, {shape[1]}]}}]
        metrics: {{auc: 0.9}}
        trained_at: 2026-01-01
        registered_at: 2026-01-02T10:00:00Z
        stage: candidate
"""


def write_catalog(folder: Path, entries: list[str]) -> Path:
    path = folder / "models.yaml"
    head = f"apiVersion: modelcat/v1\nlimits:\n  max_artifact_bytes: {4 * GIB}\nmodels:\n"
    path.write_text(head + "".join(entries), encoding="utf-8")
    return path


def big_artifact(folder: Path) -> Path:
    """A 2 GB external-data model in the store layout; returns the catalog naming it."""
    staging = folder / "staging"
    staging.mkdir(parents=True)
    length = BIG_SHAPE[0] * BIG_SHAPE[1] * 4
    write_random(staging / "weights.bin", length)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=BIG_SHAPE, data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", str(length))):
        w.external_data.add(key=key, value=value)
    onnx.save_model(matmul_model(w), str(staging / "model.onnx"))
    files = [(p.name, hash_file(str(p))) for p in sorted(staging.iterdir())]
    digest = manifest_digest(files)
    final = blob_path(folder / "store", digest)
    final.parent.mkdir(parents=True)
    staging.rename(final)
    size = sum(h.size for _, h in files)
    return write_catalog(folder, [entry("big", final.relative_to(folder).as_posix(), digest, size, BIG_SHAPE)])


def inline_artifacts(folder: Path, count: int, shape: tuple[int, int]) -> Path:
    """``count`` single-file models, weights inline, distinct random values; returns their catalog."""
    folder.mkdir()
    entries = []
    for i in range(count):
        weights = np.random.default_rng(i).random(shape, dtype=np.float32)
        data = matmul_model(numpy_helper.from_array(weights, "w")).SerializeToString()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = blob_path(folder / "store", digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
            os.fsync(f.fileno())
        entries.append(entry(f"m{i:03d}", path.relative_to(folder).as_posix(), digest, len(data), shape))
    return write_catalog(folder, entries)


def run_measured(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command that must succeed."""
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else [sys.executable, "-c", WRAPPER]
    start = time.perf_counter()
    proc = subprocess.run(timer + args, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    kbytes = re.findall(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return seconds, int(kbytes[-1]) * 1024 / MB


def run_interleaved(commands: dict[str, tuple[list[str], Path]], repeat: int) -> dict[str, dict]:
    names, out = list(commands), {name: {"seconds": [], "rss_mb": []} for name in commands}
    for rep in range(repeat):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            seconds, rss = run_measured(*commands[name])
            out[name]["seconds"].append(seconds)
            out[name]["rss_mb"].append(rss)
    for r in out.values():
        r |= {"median_s": statistics.median(r["seconds"]), "min_s": min(r["seconds"]), "max_rss_mb": max(r["rss_mb"])}
    return out


def verify_table(title: str, catalogs: dict[str, Path], cli: str, repeat: int, extra: dict | None = None) -> dict:
    """Run ``modelcat verify`` on each catalog (and the ``extra`` commands), interleaved; print a table."""
    commands = {name: ([cli, "verify", "--catalog", str(path)], ROOT) for name, path in catalogs.items()}
    results = run_interleaved(commands | (extra or {}), repeat)
    print(f"### {title}: median (min) wall and highest peak RSS of {repeat} interleaved runs\n")
    print("| catalog | artifacts | total (MB) | wall (s) | MB/s | peak RSS (MB) |\n|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        catalog = validate_file(catalogs[name]).raise_for_errors() if name in catalogs else None
        sizes = [v.artifact.size_bytes for m in catalog.models for v in m.versions] if catalog else []
        r |= {"artifacts": len(sizes), "bytes": sum(sizes)}
        speed = r["bytes"] / MB / r["median_s"]
        total = f"{r['bytes'] / MB:.2f}" if sizes else "-"
        speed_cell = (f"{speed:.0f}" if speed >= 10 else f"{speed:.2f}") if sizes else "-"
        print(
            f"| {LABELS[name]} | {len(sizes) or '-'} | {total} | {r['median_s']:.2f} ({r['min_s']:.2f}) "
            f"| {speed_cell} | {r['max_rss_mb']:.0f} |"
        )
    print()
    return results


def bench_hash(tmp: Path, _cli: str, repeat: int) -> dict:
    path = tmp / "one-gib.bin"
    write_random(path, GIB)
    with open(path, "rb") as f:  # warm the page cache: both timed readers start from it
        hashlib.file_digest(f, "sha256")

    def baseline() -> None:
        with open(path, "rb") as f:
            hashlib.file_digest(f, "sha256")

    block = memoryview(os.urandom(BLOCK))
    functions = {
        "hash_file": lambda: hash_file(str(path)),
        "file_digest": baseline,
        "memory": lambda: [hashlib.sha256(block).digest() for _ in range(GIB // BLOCK)],
    }
    times = time_interleaved(functions, repeat)
    path.unlink()
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = med["file_digest"] / med["hash_file"]  # throughput ratio project / baseline
    print(f"### sha256 of a 1 GiB file (page cache warm), median (min) of {repeat} interleaved runs\n")
    print("| reader | chunk | time (s) | throughput (GB/s) |\n|---|---:|---:|---:|")
    rows = (
        ("hash_file", "`hash_file` (project)", f"{CHUNK >> 10} KiB"),
        ("file_digest", "`hashlib.file_digest` (baseline)", "256 KiB"),
        ("memory", "ceiling: `sha256` of 1 GiB already in memory, no read", "64 MiB"),
    )
    for name, label, chunk in rows:
        print(f"| {label} | {chunk} | {med[name]:.3f} ({min(times[name]):.3f}) | {GIB / med[name] / 1e9:.2f} |")
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"\nTarget: hash_file >= {TARGET_RATIO:.0%} of file_digest's throughput: {verdict} ({ratio:.1%})\n")
    return {"times_s": times, "median_s": med, "ratio": ratio, "verdict": verdict}


def bench_verify_big(tmp: Path, cli: str, repeat: int) -> dict:
    print("building the 2 GB external-data artifact...", file=sys.stderr, flush=True)
    catalogs = {"external": big_artifact(tmp / "external"), "inline": inline_artifacts(tmp / "inline", 1, INLINE_SHAPE)}
    results = verify_table("`modelcat verify` of one big artifact", catalogs, cli, repeat)
    big = results["external"]
    big["verdict"] = "PASS" if big["max_rss_mb"] < TARGET_RSS_MB else "FAIL"
    print(f"Target: peak RSS < {TARGET_RSS_MB} MB verifying the 2 GB external-data artifact: {big['verdict']} ", end="")
    print(f"({big['max_rss_mb']:.0f} MB)\n")
    return results


def bench_verify_many(tmp: Path, cli: str, repeat: int) -> dict:
    print(f"building {N_SMALL} artifacts of 20 MB...", file=sys.stderr, flush=True)
    catalogs = {"demo": ROOT / "models.yaml", "many": inline_artifacts(tmp / "many", N_SMALL, SMALL_SHAPE)}
    startup = {"startup": ([cli, "--help"], ROOT)}
    return verify_table("`modelcat verify` wall time", catalogs, cli, repeat, startup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per measurement (default 3)")
    parser.add_argument("--skip-2gb", action="store_true", help="skip the 2 GB peak-memory measurement")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    args = parser.parse_args()
    cli = modelcat_command()
    print(
        f"Python {platform.python_version()} on {platform.platform()} ({platform.machine()}), "
        f"{os.cpu_count()} cores, {datetime.date.today().isoformat()}.\n"
    )
    benches = {"hash": bench_hash, "verify_2gb": bench_verify_big, "verify_many": bench_verify_many}
    results: dict = {}
    for name, bench in benches.items():
        if not (args.skip_2gb and name == "verify_2gb"):
            with tempfile.TemporaryDirectory(prefix="modelcat-hash-") as tmp:  # deleted section by section
                results[name] = bench(Path(tmp), cli, args.repeat)
    if args.json:
        meta = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
        meta |= {"date": datetime.datetime.now().isoformat(timespec="seconds"), "repeat": args.repeat}
        args.json.write_text(json.dumps({**meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
