"""Benchmark `modelcat synth`: N routed endpoints against a plain json.dump of the same JSON.

Run from the repository root (``make bench``), or:

    .venv/bin/python bench/synth.py [--endpoints 1000] [--repeat 3] [--json results.json]

A generated catalog of N versions with N/2 applications, each routing 90/10 between two versions,
gives N endpoints plus N/2 routes. Timed, interleaved, median (min) of --repeat runs:

  - ``modelcat synth`` as a user runs it (process start, validation, jsii start-up, synthesis);
  - ``synthesize()`` in-process, catalog already loaded (the synthesizer alone, jsii included);
  - the baseline: ``json.dump`` of the very JSON synth produced, into a file (no CDK at all).

Target (issue #5): ``modelcat synth`` of 1,000 endpoints <= 3 s. Every run's output is compared
byte for byte with the first.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_gen import generate
from validate import modelcat_command

from catalog.synth import synthesize
from catalog.validate import load_catalog

TARGET_SECONDS = 3.0


def _digest_tree(outdir: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(outdir.rglob("*.json")):
        h.update(path.relative_to(outdir).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cli = modelcat_command()
    apps = args.endpoints // 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        catalog_path = root / "models.yaml"
        catalog_path.write_text(generate(max(args.endpoints, 10), apps=apps), encoding="utf-8")
        catalog = load_catalog(catalog_path)
        digests: set[str] = set()
        times: dict[str, list[float]] = {"cli": [], "inprocess": [], "json": []}
        for rep in range(args.repeat):
            out = root / f"cli{rep}"
            start = time.perf_counter()
            subprocess.run([cli, "synth", "--catalog", str(catalog_path), "--out", str(out)], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            times["cli"].append(time.perf_counter() - start)
            digests.add(_digest_tree(out))

            start = time.perf_counter()
            result = synthesize(catalog, catalog_path, root / f"in{rep}")
            times["inprocess"].append(time.perf_counter() - start)
            digests.add(_digest_tree(root / f"in{rep}"))

            document = json.loads(result.stacks[0].path.read_text())
            start = time.perf_counter()
            with open(root / f"plain{rep}.json", "w") as f:
                json.dump(document, f, indent=2, sort_keys=True)
            times["json"].append(time.perf_counter() - start)
        counts = {kind: len(body) for kind, body in document["resource"].items()}

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s ({min(values):.2f})"

    base = statistics.median(times["json"])
    print(f"### Synth of {counts.get('modelcat_endpoint', 0):,} endpoints + {counts.get('modelcat_route', 0):,} "
          f"routes (local target), median (min) of {args.repeat}\n")  # fmt: skip
    print("| what | wall | vs json.dump |")
    print("| --- | --- | --- |")
    for name, label in (("cli", "`modelcat synth` (whole command)"), ("inprocess", "`synthesize()` in-process"),
                        ("json", "baseline: `json.dump` of the same JSON")):  # fmt: skip
        print(f"| {label} | {cell(times[name])} | {statistics.median(times[name]) / base:.1f}x |")
    verdict = "met" if statistics.median(times["cli"]) <= TARGET_SECONDS else "MISSED"
    print(f"\nTarget `modelcat synth` <= {TARGET_SECONDS:.0f} s: {verdict}; output byte-identical across "
          f"{2 * args.repeat} runs: {'yes' if len(digests) == 1 else 'NO'}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"times": times, "counts": counts, "identical": len(digests) == 1}, indent=2))


if __name__ == "__main__":
    main()
