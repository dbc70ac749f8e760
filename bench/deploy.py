"""Benchmark the local deployment: apply from cold, a no-op plan, destroy (10 endpoints x 2 replicas).

Run from the repository root (``make bench``), or:

    .venv/bin/python bench/deploy.py [--repeat 3] [--json results.json]

The catalog is the demo's models with five applications, each routing fraud-scorer 1.3.0/1.4.0
90/10 with 2 replicas per version: 10 endpoints, 20 replica processes, 5 routers. Per repetition,
in a fresh temporary project (artifacts symlinked from the repository):

  - baseline: the 20 replicas and 5 routers started directly as processes, in parallel, until
    each answers ready: what any deployment of this catalog costs on this machine;
  - ``modelcat apply --auto-approve`` from cold (Terraform init, synth, plan, apply);
  - ``modelcat plan`` with nothing to change (the same command a CI job runs);
  - ``modelcat destroy --auto-approve``.

Targets (issue #5): apply <= 15 s, no-op plan <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate import modelcat_command

ROOT = Path(__file__).resolve().parent.parent
APPS, REPLICAS = 5, 2
TARGET_APPLY, TARGET_PLAN = 15.0, 5.0


def catalog_text() -> str:
    demo = (ROOT / "models.yaml").read_text(encoding="utf-8")
    models = demo[: demo.index("\napplications:")]
    apps = ["applications:"]
    for i in range(APPS):
        apps += [
            f"  - name: shop-{i}",
            "    owner: bench@example.com",
            "    environment: production",
            "    bindings:",
            "      - model: fraud-scorer",
            "        sticky_key: x-user-id",
            "        routes:",
            "          - {version: 1.3.0, weight: 90}",
            "          - {version: 1.4.0, weight: 10}",
            "        serving:",
            f"          replicas: {REPLICAS}",
            f"          min_replicas: {REPLICAS}",
        ]
    return models + "\n" + "\n".join(apps) + "\n"


def project(tmp: Path) -> Path:
    (tmp / "models.yaml").write_text(catalog_text(), encoding="utf-8")
    (tmp / "artifacts").symlink_to(ROOT / "artifacts")
    return tmp


def timed(*command: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def direct_start(cwd: Path) -> float:
    """Start 20 replicas and 5 routers as plain processes (in parallel), wait until all are ready."""
    import httpx

    demo = (ROOT / "models.yaml").read_text()
    digests = dict(re.findall(r"uri: (artifacts/\S+)\n\s+digest: (sha256:\w+)", demo))
    versions = {"1.3.0": "fbe81f1d", "1.4.0": "344eb462"}
    jobs = []
    for version, prefix in versions.items():
        uri = next(u for u, d in digests.items() if d.startswith(f"sha256:{prefix}"))
        jobs += [("replica", version, uri, digests[uri])] * (APPS * REPLICAS)
    procs: list[subprocess.Popen[str]] = []

    def start(job: tuple[str, str, str, str]) -> None:
        _, version, uri, digest = job
        command = [sys.executable, "-m", "catalog.cli.replica_command", "--model", "fraud-scorer", "--version",
                   version, "--artifact", str(ROOT / uri), "--digest", digest, "--port", "0"]  # fmt: skip
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, text=True, start_new_session=True)
        procs.append(proc)
        line = proc.stdout.readline() if proc.stdout else ""
        url = re.search(r"(http://\S+)", line).group(1)  # type: ignore[union-attr]
        while httpx.get(f"{url}/v2/health/ready", trust_env=False).status_code != 200:
            time.sleep(0.02)

    def start_router(i: int) -> None:
        table = cwd / f"table-{i}.json"
        table.write_text(json.dumps({"apiVersion": "modelcat/routing-v1", "application": f"shop-{i}", "models": [
            {"name": "fraud-scorer", "routes": [{"version": "1.3.0", "weight": 100, "digest": "sha256:" + "0" * 64,
                                                 "replicas": ["http://127.0.0.1:9"]}]}]}))  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-m", "catalog.cli.router_command", "--table", str(table), "--port",
                                 "0"], cwd=cwd, stdout=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
        procs.append(proc)
        proc.stdout.readline() if proc.stdout else None

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(len(jobs) + APPS) as pool:
            list(pool.map(start, jobs))
            list(pool.map(start_router, range(APPS)))
        return time.perf_counter() - started
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cli = modelcat_command()
    times: dict[str, list[float]] = {"direct": [], "apply": [], "plan": [], "destroy": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="modelcat-bench-") as tmp:
            root = project(Path(tmp))
            times["direct"].append(direct_start(root))
            try:
                times["apply"].append(timed(cli, "apply", "--auto-approve", cwd=root))
                times["plan"].append(timed(cli, "plan", cwd=root))
            finally:
                times["destroy"].append(timed(cli, "destroy", "--auto-approve", cwd=root))

    def cell(name: str) -> str:
        return f"{statistics.median(times[name]):.1f} s ({min(times[name]):.1f})"

    direct = statistics.median(times["direct"])
    print(f"### Local deployment of {APPS * 2} endpoints x {REPLICAS} replicas + {APPS} routers, "
          f"median (min) of {args.repeat}\n")  # fmt: skip
    print("| step | wall | vs starting the processes directly |")
    print("| --- | --- | --- |")
    rows = (("direct", "baseline: 20 replicas + 5 routers started directly until ready"),
            ("apply", "`modelcat apply --auto-approve` from cold"), ("plan", "`modelcat plan`, nothing to change"),
            ("destroy", "`modelcat destroy --auto-approve`"))  # fmt: skip
    for name, label in rows:
        print(f"| {label} | {cell(name)} | {statistics.median(times[name]) / direct:.1f}x |")
    apply_ok = statistics.median(times["apply"]) <= TARGET_APPLY
    plan_ok = statistics.median(times["plan"]) <= TARGET_PLAN
    print(f"\nTargets: apply <= {TARGET_APPLY:.0f} s: {'met' if apply_ok else 'MISSED'}; "
          f"no-op plan <= {TARGET_PLAN:.0f} s: {'met' if plan_ok else 'MISSED'}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(times, indent=2))


if __name__ == "__main__":
    main()
