"""Benchmark `modelcat synth`: N routed endpoints against a plain json.dump of the same JSON.

Run from the repository root (``make bench``), or:

    .venv/bin/python bench/synth.py [--endpoints 1000] [--kubernetes 1000,3000] [--sagemaker 1000] [--repeat 3] [--json results.json]

A generated catalog of N versions with N/2 applications, each routing 90/10 between two versions
with a sticky key, gives N endpoints plus N/2 routes. Timed, interleaved, median (min) of --repeat:

  - ``modelcat synth`` as a user runs it (process start, validation, jsii start-up, synthesis);
  - ``synthesize()`` in-process, catalog already loaded (the synthesizer alone, jsii included);
  - the baseline: ``json.dump`` (indent 2, sorted keys) of the very JSON synth produced, into a file;
    and the same with ``orjson`` (what synth itself writes the kubernetes bodies with).

Tables: the local target for ``--endpoints`` (target, issue #5: ``modelcat synth`` of 1,000
endpoints <= 3 s), the kubernetes target for each size of ``--kubernetes`` (issue #6: <= 3 s for
1,000, <= 8 s for 3,000; per endpoint a Deployment, Service and HPA, per application a router
Deployment, Service, PDB, ConfigMap and HTTPRoute), the sagemaker target for each size of
``--sagemaker`` (no target set; per version a model, per application an endpoint configuration,
endpoint, two guardrail alarms and per variant autoscaling), and the start-up costs of the kubernetes
target, each in fresh processes: the CDK (``import cdktn``: Node and the CDK's jsii assembly), the
provider's Python struct modules as the target imports them (``import_bindings``, its jsii assembly
not loaded), and that assembly loaded into Node (what the target avoids). Every run's output is
compared byte for byte with the first of its table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_gen import generate
from validate import modelcat_command

from catalog.synth import synthesize
from catalog.validate import load_catalog

TARGET_SECONDS = 3.0
KUBERNETES_TARGETS = {1000: 3.0, 3000: 8.0}  # endpoints -> seconds (issue #6)
STARTUP = {
    "cdktn": "import cdktn",
    "bindings": "import cdktn\nfrom catalog.synth.targets.kubernetes import load_modules\nload_modules()",
    "assembly": "import cdktn\nfrom catalog.synth.targets.kubernetes import load_modules\nload_modules()\n"
    "from catalog.synth.typed import load_assembly\nload_assembly('cdktn_provider_kubernetes')",
}


def _digest_tree(outdir: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(outdir.rglob("*.json")):
        h.update(path.relative_to(outdir).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f})"


def run_table(root: Path, cli: str, endpoints: int, repeat: int, target: str) -> dict:
    """Time the three ways for one generated catalog; the JSON of the first stack is the baseline's."""
    catalog_path = root / f"models-{target}-{endpoints}.yaml"
    catalog_path.write_text(generate(max(endpoints, 10), apps=endpoints // 2, target=target), encoding="utf-8")
    catalog = load_catalog(catalog_path)
    digests: set[str] = set()
    times: dict[str, list[float]] = {"cli": [], "inprocess": [], "json": [], "orjson": []}
    for rep in range(repeat):
        out = root / f"cli-{target}-{endpoints}-{rep}"
        start = time.perf_counter()
        subprocess.run([cli, "synth", "--catalog", str(catalog_path), "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        times["cli"].append(time.perf_counter() - start)
        digests.add(_digest_tree(out))

        start = time.perf_counter()
        result = synthesize(catalog, catalog_path, root / f"in-{target}-{endpoints}-{rep}")
        times["inprocess"].append(time.perf_counter() - start)
        digests.add(_digest_tree(root / f"in-{target}-{endpoints}-{rep}"))

        document = json.loads(result.stacks[0].path.read_text())
        start = time.perf_counter()
        with open(root / f"plain-{target}-{rep}.json", "w") as f:
            json.dump(document, f, indent=2, sort_keys=True)
        times["json"].append(time.perf_counter() - start)
        start = time.perf_counter()
        (root / f"plain-{target}-{rep}.orjson").write_bytes(
            orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        )
        times["orjson"].append(time.perf_counter() - start)
    counts = {kind: len(body) for kind, body in document["resource"].items()}
    size = result.stacks[0].path.stat().st_size
    return {"times": times, "counts": counts, "identical": len(digests) == 1, "bytes": size}


def print_table(title: str, table: dict, target_seconds: float | None) -> None:
    times = table["times"]
    base = statistics.median(times["json"])
    print(f"{title}\n")
    print("| what | wall | vs json.dump |")
    print("| --- | --- | --- |")
    for name, label in (("cli", "`modelcat synth` (whole command)"), ("inprocess", "`synthesize()` in-process"),
                        ("json", "baseline: `json.dump` of the same JSON"),
                        ("orjson", "baseline: `orjson.dumps` of the same JSON, written")):  # fmt: skip
        print(f"| {label} | {cell(times[name])} | {statistics.median(times[name]) / base:.1f}x |")
    verdict = ""
    if target_seconds is not None:
        met = "met" if statistics.median(times["cli"]) <= target_seconds else "MISSED"
        verdict = f"Target `modelcat synth` <= {target_seconds:.0f} s: {met}; "
    runs = 2 * len(times["cli"])
    print(f"\n{verdict}output byte-identical across {runs} runs: {'yes' if table['identical'] else 'NO'}\n")


def startup(repeat: int) -> dict[str, list[float]]:
    """Fresh-process seconds of each start-up step (process start and imports of catalog excluded)."""
    prelude = "import time\nfrom catalog.synth.node import prepare_jsii\nprepare_jsii()\nt = time.perf_counter()\n"
    times: dict[str, list[float]] = {name: [] for name in STARTUP}
    for _ in range(repeat):
        for name, code in STARTUP.items():
            script = prelude + code + "\nprint(time.perf_counter() - t)"
            out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
            times[name].append(float(out.stdout.strip().splitlines()[-1]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000, help="local target size")
    parser.add_argument("--kubernetes", default="1000,3000", help="kubernetes target sizes, comma separated")
    parser.add_argument("--sagemaker", default="1000", help="sagemaker target sizes, comma separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cli = modelcat_command()
    sizes = [int(n) for n in args.kubernetes.split(",") if n.strip()]
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local = run_table(root, cli, args.endpoints, args.repeat, "local")
        results["local"] = local
        counts = local["counts"]
        print_table(
            f"### Synth of {counts.get('modelcat_endpoint', 0):,} endpoints + {counts.get('modelcat_route', 0):,} "
            f"routes (local target), median (min) of {args.repeat}",
            local,
            TARGET_SECONDS,
        )
        runs = [("kubernetes", n) for n in sizes]
        runs += [("sagemaker", int(n)) for n in args.sagemaker.split(",") if n.strip()]
        for target, n in runs:
            table = run_table(root, cli, n, args.repeat, target)
            results[f"{target}-{n}"] = table
            resources = ", ".join(
                f"{count:,} {kind.removeprefix('kubernetes_').removeprefix('aws_')}"
                for kind, count in table["counts"].items()
            )
            print_table(
                f"### Synth of {n:,} routed versions ({target} target: {resources}; "
                f"{table['bytes'] / 1e6:.1f} MB), median (min) of {args.repeat}",
                table,
                KUBERNETES_TARGETS.get(n) if target == "kubernetes" else None,
            )
    steps = startup(args.repeat)
    results["startup"] = steps
    print(f"### Start-up of the kubernetes target, fresh processes, median (min) of {args.repeat}\n")
    print("| step | wall |")
    print("| --- | --- |")
    cdk = statistics.median(steps["cdktn"])
    print(f"| `import cdktn` (Node + the CDK's jsii assembly) | {cell(steps['cdktn'])} |")
    bindings = [b - c for b, c in zip(steps["bindings"], steps["cdktn"], strict=True)]
    print(f"| + provider struct modules, assembly load deferred (what synth does) | {cell(bindings)} |")
    assembly = [a - b for a, b in zip(steps["assembly"], steps["bindings"], strict=True)]
    print(f"| + the provider's jsii assembly loaded into Node (avoided) | {cell(assembly)} |")
    print(
        f"\nThe CDK alone: {cdk:.2f} s; with the provider assembly it would be {statistics.median(steps['assembly']):.2f} s."
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
