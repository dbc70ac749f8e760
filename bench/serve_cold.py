"""A replica's cold start, for bench/serve.py: spawning ``modelcat replica`` of the ~100 MB model until
``/v2/health/ready`` answers 200, beside the demo model's (the floor), and the parts measured
separately in the same run (interpreter start, the imports, ``hash_file``, onnxruntime session
creation, ``load_verified``). Target: ready in <= 2 s."""

from __future__ import annotations

import http.client
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import onnxruntime as ort
from serve_fleet import MB, ROOT, SMALL, Model, clean_env, read_url, replica_args, spawn, stop

from catalog.artifacts.hashing import hash_file
from catalog.serving.replica_model import load_verified

TARGET_COLD_S = 2.0


def cold_start(cli: str, model: Model) -> dict:
    """Spawn ``modelcat replica``; seconds to its 'listening' line and to /v2/health/ready 200."""
    started = time.perf_counter()
    proc = spawn(replica_args(cli, model), stderr=subprocess.DEVNULL)
    try:
        url = read_url(proc)
        listening = time.perf_counter()
        where = urlsplit(url)
        while True:
            conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
            try:
                conn.request("GET", "/v2/health/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.005)
            finally:
                conn.close()
        ready = time.perf_counter()
        with open(f"/proc/{proc.pid}/status") as status:
            hwm = next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    finally:
        stop(proc)
    return {"listening_s": listening - started, "ready_s": ready - started, "peak_rss_mb": hwm * 1024 / MB}


def bench_cold(cli: str, big: Model, runs: int) -> dict:
    python = sys.executable
    spawned: dict[str, list[dict]] = {"big": [], "small": []}

    def until_line(code: str) -> float:
        """Seconds from spawning ``python -c code`` to its first line (the exit, which may be slow, is not timed)."""
        started = time.perf_counter()
        args = [python, "-c", f"{code}; print('ok', flush=True)"]
        proc = subprocess.Popen(args, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline() if proc.stdout else ""
        seconds = time.perf_counter() - started
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if line.strip() != "ok" or proc.returncode != 0:
            sys.exit(f"python -c {code!r} failed ({proc.returncode})")
        return seconds

    def timed(function: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            started = time.perf_counter()
            function()
            return time.perf_counter() - started

        return run

    def spawn(which: str, model: Model) -> float:
        result = cold_start(cli, model)
        spawned[which].append(result)
        return result["ready_s"]

    def session_from_path() -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        ort.InferenceSession(str(big.artifact), sess_options=options, providers=["CPUExecutionProvider"])

    def session_from_bytes() -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        data = big.artifact.read_bytes()
        ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])

    parts: dict[str, Callable[[], float]] = {
        "spawn_big": lambda: spawn("big", big),
        "spawn_small": lambda: spawn("small", SMALL),
        "python": lambda: until_line("pass"),
        "cli_import": lambda: until_line("import catalog.cli.main"),
        "imports": lambda: until_line(
            "import catalog.cli.main, catalog.serving.replica, catalog.serving.replica_model"
        ),
        "hash_file": timed(lambda: hash_file(str(big.artifact))),
        "read_bytes": timed(big.artifact.read_bytes),
        "session_path": timed(session_from_path),
        "session_bytes": timed(session_from_bytes),
        "load_verified": timed(lambda: load_verified(big.artifact, big.digest)),
    }
    hash_file(str(big.artifact))  # the page cache is warm for every timed run
    cold_start(cli, big)  # one untimed spawn: the interpreter's own files are cached too
    names, times = list(parts), {name: [] for name in parts}
    for rep in range(runs):  # interleaved: each run times every part, starting one later each time
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            times[name].append(parts[name]())
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for which in ("big", "small"):
        for key in ("listening_s", "ready_s", "peak_rss_mb"):
            values = [r[key] for r in spawned[which]]
            med[f"{which}_{key}"] = max(values) if key == "peak_rss_mb" else statistics.median(values)
    size = big.artifact.stat().st_size
    print(f"### Replica cold start, {big.label}: median of {runs} interleaved runs, page cache warm\n")
    print("| what | time (s) | note |\n|---|---:|---|")
    rows = [
        ("`modelcat replica` spawn -> `/v2/health/ready` 200", med["big_ready_s"],
         f"listening line at {med['big_listening_s']:.3f} s; replica peak RSS {med['big_peak_rss_mb']:.0f} MB"),
        ("same, demo model (2.4 KB): the floor", med["small_ready_s"],
         f"peak RSS {med['small_peak_rss_mb']:.0f} MB"),
        ("difference: the 100 MB model's own cost", med["big_ready_s"] - med["small_ready_s"], ""),
        ("parts, in-process on the same file:", None, ""),
        ("`python -c pass` (interpreter start)", med["python"], "subprocess, to its first line of output"),
        ("`python -c 'import catalog.cli.main'` (start + the CLI)", med["cli_import"], "same"),
        ("same + `catalog.serving.replica`, `replica_model` (every import)", med["imports"],
         "same; onnxruntime, numpy, onnx, starlette, uvicorn, prometheus_client"),
        ("`hash_file` (sha256)", med["hash_file"], f"{size / MB / med['hash_file']:.0f} MB/s"),
        ("read the file into bytes", med["read_bytes"], ""),
        ("`InferenceSession(path)`", med["session_path"], "onnxruntime reads and parses the file"),
        ("`InferenceSession(bytes)`, reading included", med["session_bytes"], "as the replica builds it"),
        ("`load_verified` (hash while reading, session from those bytes)", med["load_verified"],
         "what the replica does before listening"),
    ]  # fmt: skip
    for label, seconds, note in rows:
        print(f"| {label} | {'' if seconds is None else f'{seconds:.3f}'} | {note} |")
    ready = med["big_ready_s"]
    met = ready <= TARGET_COLD_S
    gap = "" if met else f", MISSED by {ready - TARGET_COLD_S:.2f} s"
    state = "met" if met else "missed"
    print(
        f"\n**Cold-start target**: replica of a 100 MB model ready in <= {TARGET_COLD_S:g} s: {state} ({ready:.2f} s{gap})\n"
    )
    return {"times_s": times, "median": med, "spawns": spawned, "met": met}
