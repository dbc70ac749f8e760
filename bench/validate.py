"""Benchmark `modelcat validate` against the raw libyaml (C) parse of the same file.

Run from the repository root with ``make bench``, or:

    .venv/bin/python bench/validate.py [--sizes 1000,10000] [--repeat 5] [--json results.json]

For each size, a generated catalog is timed with, interleaved in every repetition (the order
rotates so machine noise hits all alike):

  * baseline: ``yaml.load(open(path).read(), Loader=yaml.CSafeLoader)``, reading included;
  * validate: ``catalog.validate.validate_file(path)`` in-process (the report must be ok);
  * cli: ``modelcat validate PATH`` as a subprocess, and ``modelcat --help`` (start-up alone).

Prints a Markdown table of medians and the verdict against the target below.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_gen import generate

from catalog.validate import validate_file

TARGET_VERSIONS = 10_000
TARGET_RATIO = 1.5


def modelcat_command() -> str:
    beside_python = Path(sys.executable).with_name("modelcat")
    found = str(beside_python) if beside_python.exists() else shutil.which("modelcat")
    if not found:
        sys.exit("modelcat command not found: install the package (pip install -e .)")
    return found


def measurements(path: Path, cli: str) -> dict:
    """The functions to time for one catalog file, by name."""

    def baseline() -> None:
        with open(path, encoding="utf-8") as f:
            yaml.load(f.read(), Loader=yaml.CSafeLoader)

    def validate() -> None:
        report = validate_file(path)
        assert report.ok, f"generated catalog is invalid: {report.problems[:3]}"

    def run(*args: str) -> None:
        subprocess.run([cli, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    return {
        "baseline": baseline,
        "validate": validate,
        "cli": lambda: run("validate", str(path)),
        "startup": lambda: run("--help"),
    }


def time_interleaved(functions: dict, repeat: int) -> dict[str, list[float]]:
    """Wall times per function; each repetition runs all of them, starting one later each time."""
    names = list(functions)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeat):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return times


def report_target(
    results: list[dict], target: str, versions: int, limit: float, json_path: Path | None, meta: dict
) -> None:
    """Print the verdict of ``results[versions]["ratio"] <= limit``; with ``json_path``, write the results."""
    measured = [r for r in results if r["versions"] == versions]
    verdict = None
    if measured:
        verdict = "PASS" if measured[0]["ratio"] <= limit else "FAIL"
        print(f"\nTarget: {target}: {verdict} ({measured[0]['ratio']:.2f}x, from the medians)")
    else:
        print(f"\nTarget: {target}: not measured (add {versions} to --sizes)")
    if json_path:
        meta = {"python": platform.python_version(), "platform": platform.platform(), **meta}
        meta |= {"date": datetime.datetime.now().isoformat(timespec="seconds"), "target": target, "verdict": verdict}
        json_path.write_text(json.dumps({**meta, "results": results}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated version counts (multiples of 10)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per size (default 5)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cli = modelcat_command()

    results = []
    with tempfile.TemporaryDirectory(prefix="modelcat-bench-") as tmp:
        for versions in sizes:
            path = Path(tmp) / f"models-{versions}.yaml"
            text = generate(versions)
            path.write_text(text, encoding="utf-8")
            print(f"timing {versions:,} versions ({args.repeat} runs)...", file=sys.stderr, flush=True)
            times = time_interleaved(measurements(path, cli), args.repeat)
            results.append(
                {
                    "versions": versions,
                    "bytes": path.stat().st_size,
                    "lines": text.count("\n"),
                    "times_s": times,
                    "median_s": {name: statistics.median(ts) for name, ts in times.items()},
                    "min_s": {name: min(ts) for name, ts in times.items()},
                }
            )

    print(
        f"Python {platform.python_version()} on {platform.platform()} ({platform.machine()}), "
        f"{datetime.date.today().isoformat()}; median (min) of {args.repeat} interleaved runs.\n"
    )
    print(
        "| versions | size (MB) | lines | libyaml parse (s) | validate_file (s) | validate / parse "
        "| `modelcat validate` (s) | start-up alone (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        med, low = r["median_s"], r["min_s"]
        r["ratio"] = med["validate"] / med["baseline"]
        cells = [f"{med[n]:.3f} ({low[n]:.3f})" for n in ("baseline", "validate")]
        cli_cells = [f"{med[n]:.2f} ({low[n]:.2f})" for n in ("cli", "startup")]
        print(
            f"| {r['versions']:,} | {r['bytes'] / 1e6:.1f} | {r['lines']:,} | {cells[0]} | {cells[1]} "
            f"| {r['ratio']:.2f}x | {cli_cells[0]} | {cli_cells[1]} |"
        )

    target = f"validate of {TARGET_VERSIONS:,} versions <= {TARGET_RATIO}x the raw libyaml parse"
    report_target(results, target, TARGET_VERSIONS, TARGET_RATIO, args.json, {"repeat": args.repeat})


if __name__ == "__main__":
    main()
