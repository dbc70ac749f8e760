"""Benchmark `modelcat feedback import` of 1 M outcome events (JSON lines) against DuckDB's raw copy of the file.

Run from the repository root with ``make bench``, or:

    .venv/bin/python bench/feedback.py [--events 1000000] [--repeat 3] [--json results.json]

A generated file of ``--events`` events (half by request id, half by unit, times in UTC with a
``Z``, some with an offset; conversions and basket values of the demo's storefront, which declares
them here) is imported, interleaved in every repetition (the order rotates so machine noise hits all
alike):

  * baseline: DuckDB reads the file and writes it back as JSON lines (``COPY (SELECT * FROM
    read_json(...)) TO ...``): the same bytes in and out, without validation, hashing or fsync;
  * import, empty log: ``modelcat feedback import FILE --app storefront`` as a subprocess (start-up,
    catalog, validation, unit hashing, the duplicate check and the fsynced write) into a stack
    whose outcome log is empty;
  * import, 1 M stored: the same into a log that already holds the same file's events (every event
    a duplicate: the duplicate check reads them all).

Prints a Markdown table of medians (minimum in brackets) and the verdict against the target below.
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
from collections.abc import Callable
from pathlib import Path

import duckdb
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate import modelcat_command

ROOT = Path(__file__).resolve().parent.parent
TARGET_EVENTS = 1_000_000
TARGET_SECONDS = 10.0
OUTCOMES = "    outcomes:\n      - {name: conversion, kind: proportion}\n      - {name: basket_value, kind: mean}\n"


def generate(path: Path, events: int) -> None:
    """``events`` outcome events as JSON lines."""
    with open(path, "wb") as handle:
        for i in range(events):
            row: dict[str, object] = {"event_id": f"evt-{i:09d}"}
            if i % 2:
                row["request_id"] = f"{i * 2654435761 % (1 << 64):016x}{i:016x}"
            else:
                row["unit"] = f"session-{i % 200_000}"
            if i % 10 == 9:
                row |= {"outcome": "basket_value", "value": round((i % 9973) / 37, 2)}
            else:
                row |= {"outcome": "conversion", "value": i % 7 == 0}
            minute, second = divmod(i % 3600, 60)
            row["time"] = (
                f"2026-12-05T10:{minute:02d}:{second:02d}+02:00"
                if i % 100 == 0
                else f"2026-12-05T08:{minute:02d}:{second:02d}Z"
            )
            handle.write(orjson.dumps(row) + b"\n")


def project(folder: Path) -> Path:
    """The demo catalog, storefront declaring the benchmark's outcomes, with an applied-looking stack."""
    text = (ROOT / "models.yaml").read_text()
    start = text.index("  - name: storefront")
    bindings = text.index("    bindings:", start)
    declared = text.index("    outcomes:", start) if "    outcomes:" in text[start:bindings] else -1
    if declared >= 0:  # replace the demo's own outcomes with the benchmark's
        text = text[:declared] + OUTCOMES + text[bindings:]
    else:
        text = text[:bindings] + OUTCOMES + text[bindings:]
    folder.mkdir(parents=True)
    (folder / "models.yaml").write_text(text)
    (folder / ".modelcat" / "run" / "production-local").mkdir(parents=True)
    return folder / "models.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=TARGET_EVENTS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-feedback-"))
    try:
        source = work / "events.jsonl"
        generate(source, args.events)
        size = source.stat().st_size
        cli = modelcat_command()
        run = 0

        def baseline() -> None:
            out = work / "copy.jsonl"
            duckdb.sql(
                f"COPY (SELECT * FROM read_json('{source}', format='newline_delimited')) TO '{out}' (FORMAT json)"
            )
            out.unlink()

        def importer(catalog: Path) -> None:
            argv = [cli, "feedback", "import", str(source), "--app", "storefront", "--catalog", str(catalog),
                    "--format", "json"]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            report = json.loads(done.stdout) if done.stdout.startswith("{") else {}
            if done.returncode != 0 or report.get("stored") != args.events:
                sys.exit(f"feedback import failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")

        def fresh() -> Path:
            nonlocal run
            run += 1
            return project(work / f"project-{run}")

        timings: dict[str, list[float]] = {"baseline": [], "empty": [], "stored": []}
        for repetition in range(args.repeat):
            empty, stored = fresh(), fresh()
            importer(stored)  # a log already holding the file's events (untimed)
            steps: dict[str, Callable[[], None]] = {
                "baseline": baseline,
                "empty": lambda catalog=empty: importer(catalog),
                "stored": lambda catalog=stored: importer(catalog),
            }
            names = list(steps)
            names = names[repetition % len(names) :] + names[: repetition % len(names)]
            for name in names:
                started = time.perf_counter()
                steps[name]()
                timings[name].append(time.perf_counter() - started)
            shutil.rmtree(empty.parent)
            shutil.rmtree(stored.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({min(values):.2f})"

    base = statistics.median(timings["baseline"])
    rows = [
        ("baseline: DuckDB copies the file (read_json, COPY TO json)", timings["baseline"]),
        ("`modelcat feedback import`, empty log", timings["empty"]),
        (f"`modelcat feedback import`, {args.events:,} events already stored", timings["stored"]),
    ]
    print(f"{args.events:,} events, {size / 1e6:.0f} MB of JSON lines; median (min) of {args.repeat}, seconds\n")
    print("| step | wall (s) | vs baseline |\n| --- | ---: | ---: |")
    for label, values in rows:
        print(f"| {label} | {cell(values)} | {statistics.median(values) / base:.1f}x |")
    worst = max(statistics.median(timings["empty"]), statistics.median(timings["stored"]))
    verdict = "PASS" if args.events >= TARGET_EVENTS and worst <= TARGET_SECONDS else "FAIL"
    print(f"\nTarget: import of {TARGET_EVENTS:,} events <= {TARGET_SECONDS:g} s. Verdict: {verdict} ({worst:.1f} s)")
    if args.json:
        results = {
            "date": datetime.date.today().isoformat(),
            "python": platform.python_version(),
            "events": args.events,
            "bytes": size,
            "timings": timings,
            "verdict": verdict,
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
