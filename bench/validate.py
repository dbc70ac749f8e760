"""Benchmark `modelcat validate` against the raw libyaml (C) parse of the same file.

Run from the repository root with ``make bench``, or:

    .venv/bin/python bench/validate.py [--sizes 1000,10000] [--repeat 5] [--json results.json]

For each size, a generated catalog is timed with, interleaved in every repetition (the order
rotates so machine noise hits all alike):

  * baseline: ``yaml.load(open(path).read(), Loader=yaml.CSafeLoader)``, reading included;
  * validate: ``catalog.validate.validate_file(path)`` in-process (the report must be ok);
  * cli: ``modelcat validate PATH`` as a subprocess, and ``modelcat --help`` (start-up alone).

Prints a Markdown table of medians and the verdict against the target below.

With ``--memory 10000,40000,...``, it measures instead the peak resident memory of ``modelcat
validate PATH`` (one subprocess per run, its own rusage) on a generated catalog of each size, valid
and with one problem in its last lines (reporting a problem composes the file again to find its
line), and prints size -> peak RSS: what ``MAX_CATALOG_BYTES`` is chosen from.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
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
from catalog.yamlio.loader import MAX_CATALOG_BYTES

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


def peak_rss_mb(argv: list[str]) -> tuple[int, float]:
    """Run ``argv``; its exit code and peak resident set size in MiB (its own rusage: os.wait4)."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024  # KiB on Linux


def memory(sizes: list[int], cli: str) -> None:
    print(
        f"Python {platform.python_version()} on {platform.platform()}, {datetime.date.today().isoformat()}; "
        f"`modelcat validate PATH`, peak RSS (the cap is {MAX_CATALOG_BYTES:,} bytes).\n"
    )
    print("| versions | size (MB) | peak RSS, valid (MiB) | peak RSS, one problem (MiB) | peak RSS / file size |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="modelcat-bench-") as tmp:
        for versions in sizes:
            path = Path(tmp) / "models.yaml"
            text = generate(versions)
            path.write_text(text, encoding="utf-8")
            size = path.stat().st_size
            code, valid = peak_rss_mb([cli, "validate", str(path)])
            assert code == 0, f"generated catalog of {versions} versions is invalid"
            path.write_text(text.replace("weight: 10}", "weight: 11}"), encoding="utf-8")
            code, invalid = peak_rss_mb([cli, "validate", str(path)])
            assert code == 1, "the catalog with one problem was not reported"
            print(
                f"| {versions:,} | {size / 1e6:.1f} | {valid:,.0f} | {invalid:,.0f} "
                f"| {max(valid, invalid) * (1 << 20) / size:.0f}x |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated version counts (multiples of 10)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per size (default 5)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    parser.add_argument("--memory", metavar="SIZES", help="measure peak RSS at these version counts instead")
    args = parser.parse_args()
    cli = modelcat_command()
    if args.memory:
        memory([int(s) for s in args.memory.split(",")], cli)
        return
    sizes = [int(s) for s in args.sizes.split(",")]

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
