"""Benchmark `modelcat review` of a one-version change against `modelcat validate` of the same catalog.

Run from the repository root (``make bench``), or:

    .venv/bin/python bench/review.py [--sizes 1000,10000] [--repeat 3] [--baseline-catalog DIR] [--json results.json]

``--baseline-catalog DIR`` also times, in the same interleaved runs, ``modelcat review`` of another
revision (*review-before*): DIR holds that revision's ``catalog/``, e.g.
``git archive d8aa564 catalog | tar -x -C DIR``.

For each size, a temporary git repository gets a generated catalog (``bench/catalog_gen.py``) and
the policies of this repository beside it, committed. Then one version that no application serves
gets new bytes in the working tree: a real ONNX file with the signature the generator declares
(features float32 [batch, 32] -> score float32 [batch, 1]), stored where the local store keeps it,
with its uri, digest and size rewritten in models.yaml, so the review verifies it for real.

Timed, interleaved (each repetition runs all of them, rotating the order), median (min) of --repeat:

  * ``modelcat validate`` (the baseline) and ``modelcat review HEAD --now 2026-11-27 --out DIR``, as
    subprocesses in the repository; ``modelcat --help`` (start-up alone);
  * in-process, the phases of ``catalog.review.review`` run one after the other with the functions it
    calls: validate head, load base (git show and the base catalog), diff, verify, resources (synthesize
    both sides and the blast radius), policy inputs (both sides and the changed subjects), judge, and
    inside judge the policy evaluation alone (``evaluate`` over the judged inputs, timed separately);
    and ``review()`` itself as one call, whose outcome is checked (the changed version verified ok).

Prints a Markdown table and the verdict against the target (issue #7): review of 10,000 versions
with one changed version <= 2x validate of the same catalog.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_gen import VERSIONS_PER_MODEL, _digest, generate
from validate import modelcat_command, report_target

from catalog import review as review_module
from catalog.artifacts.verify import select_versions, verify_versions
from catalog.cli.common import parse_now
from catalog.domain.deployment import environments
from catalog.domain.diff import diff_catalogs
from catalog.nogc import no_gc
from catalog.policy.check import LoadedCatalog, artifact_observer, evaluate, judge, load_policies
from catalog.policy.inputs import base_versions_of, catalog_inputs
from catalog.policy.waivers import load_waivers
from catalog.revisions import changed_artifact_files, load_revision
from catalog.synth.blast import blast_radius
from catalog.synth.resources import synthesize_resources

ROOT = Path(__file__).resolve().parent.parent
TARGET_VERSIONS = 10_000
TARGET_RATIO = 2.0
NOW = "2026-11-27"
PHASES = ("validate_head", "load_base", "diff", "verify", "resources", "inputs", "judge", "evaluate")
PHASE_TITLES = {
    "validate_head": "validate head",
    "load_base": "load base (git show + catalog)",
    "diff": "diff (models.yaml, and the artifact files git changed)",
    "verify": "verify (1 artifact)",
    "resources": "synthesize both sides + blast radius",
    "inputs": "policy inputs, both sides",
    "judge": "judge (policies on changed subjects)",
    "evaluate": "of which policy evaluation alone",
}


def small_onnx(n_in: int = 32, n_out: int = 1) -> bytes:
    """A real ONNX model with the generator's signature: score = features @ w + b (fixed weights)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.linspace(-1, 1, n_in * n_out, dtype=np.float32).reshape(n_in, n_out), "w")
    b = numpy_helper.from_array(np.zeros(n_out, dtype=np.float32), "b")
    nodes = [helper.make_node("MatMul", ["features", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["score"])]
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", n_out])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelcat-bench")
    model.ir_version = 9
    return model.SerializeToString()  # type: ignore[no-any-return]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_repository(repo: Path, versions: int) -> tuple[str, str]:
    """The committed catalog and its policies, then one unserved version's new bytes in the working
    tree. Returns (model, version) of the changed version."""
    repo.mkdir()
    text = generate(versions)
    (repo / "models.yaml").write_text(text, encoding="utf-8")
    shutil.copytree(ROOT / "policies", repo / "policies")
    git(repo, "init", "-q")
    git(repo, "add", "models.yaml", "policies")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", "catalog")

    # The generated applications route versions 1.8.0 and 1.9.0 of the first models only: change
    # version 1.3.0 of the last model (a candidate nobody serves).
    m, v = max(1, versions // VERSIONS_PER_MODEL) - 1, 3
    old = _digest(m, v)
    artifact = small_onnx()
    new = hashlib.sha256(artifact).hexdigest()
    stored = repo / "artifacts" / "sha256" / new[:2] / new
    stored.parent.mkdir(parents=True)
    stored.write_bytes(artifact)
    edited = text.replace(f"uri: artifacts/sha256/{old[:2]}/{old}", f"uri: artifacts/sha256/{new[:2]}/{new}")
    edited = edited.replace(f"digest: sha256:{old}", f"digest: sha256:{new}")
    edited = edited.replace(
        f"digest: sha256:{new}\n          size_bytes: {10_000 + m * 7 + v}\n",
        f"digest: sha256:{new}\n          size_bytes: {len(artifact)}\n",
    )
    assert edited.count(new) == 2 and f"size_bytes: {len(artifact)}\n" in edited, "the edit did not apply"
    (repo / "models.yaml").write_text(edited, encoding="utf-8")
    return f"model-{m:05d}", f"1.{v}.0"


def phases(repo: Path, now: datetime.datetime, times: dict[str, list[float]]) -> None:
    """The steps of ``catalog.review.review``, each timed (same functions, same order)."""
    path = repo / "models.yaml"
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        t = time.perf_counter()
        times[name].append(t - clock)
        clock = t

    head_revision = load_revision(path)
    head = head_revision.valid()
    text = head_revision.text or ""
    lap("validate_head")
    base = load_revision(path, "HEAD", like=head_revision).catalog
    assert base is not None
    lap("load_base")
    diff = diff_catalogs(base, head)
    files, _ = changed_artifact_files(path, head, "HEAD")
    lap("diff")
    chosen = select_versions(head, only=set(diff.touched_versions()) | files.keys())
    verified = verify_versions(head, chosen, repo)
    assert len(verified) == 1 and verified[0].ok, verified
    lap("verify")
    before = synthesize_resources(base, path, None)
    after = synthesize_resources(head, path, None)
    blast = blast_radius(before, after, [*environments(base), *environments(head)])
    lap("resources")
    policies, settings = load_policies(repo / "policies")
    facts = base_versions_of(base)
    observe = artifact_observer(repo)
    judged = review_module.models_to_judge(base, head)
    head_inputs = catalog_inputs(head, now=now, settings=settings, base=facts, observe=observe, models=judged)
    base_inputs = catalog_inputs(base, now=now, settings=settings, base=facts, observe=observe, models=judged)
    subjects = review_module.changed_subjects(head_inputs, base_inputs)
    resource_inputs = review_module._resource_inputs(after, blast, head)
    subjects |= {i.subject for i in resource_inputs}
    inputs = head_inputs + resource_inputs
    lap("inputs")
    loaded = LoadedCatalog(text, head, [])
    result = judge(loaded, str(path), inputs, policies, load_waivers(repo / "policies"), now, {"base", "synth"}, "HEAD",
                   subjects)  # fmt: skip
    lap("judge")
    judged = [i for i in inputs if i.subject in subjects]
    assert result.inputs == len(judged)
    evaluate(policies, judged, list(policies.rules))
    lap("evaluate")


def measurements(
    repo: Path, cli: str, out: Path, now: datetime.datetime, phase_times: dict, baseline: Path | None
) -> dict:
    def run(*args: str, codes: tuple[int, ...] = (0,), before: bool = False) -> None:
        command, env = [cli, *args], None
        if before:  # the other revision's package first on the path (the repository is the cwd, not ROOT)
            assert baseline is not None
            command = [sys.executable, "-c", "import sys; from catalog.cli.main import main; sys.exit(main())", *args]
            env = {**os.environ, "PYTHONPATH": str(baseline.resolve())}
        done = subprocess.run(
            command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        assert done.returncode in codes, f"{args}: exit {done.returncode}: {done.stderr.decode()[-2000:]}"

    def in_process_review() -> None:
        with no_gc():
            result = review_module.review(repo / "models.yaml", "HEAD", policies_dir=repo / "policies", now=now)
        assert result.verified and not result.failed_artifacts and not result.problems, result.verified

    def in_process_phases() -> None:
        with no_gc():
            phases(repo, now, phase_times)

    functions: dict[str, Callable[[], None]] = {
        "validate": lambda: run("validate", "models.yaml"),
        "review": lambda: run("review", "HEAD", "--now", NOW, "--out", str(out), codes=(0, 1)),
        "startup": lambda: run("--help"),
        "review_inprocess": in_process_review,
        "phases": in_process_phases,
    }
    if baseline is not None:
        review_args = ("review", "HEAD", "--now", NOW, "--out", str(out) + "-before")
        functions["review_before"] = lambda: run(*review_args, codes=(0, 1), before=True)
    return functions


def time_interleaved(functions: dict, repeat: int) -> dict[str, list[float]]:
    names = list(functions)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeat):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            gc.collect()  # the garbage of the previous in-process run is not charged to this one
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return times


def cell(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated version counts (multiples of 10)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per size (default 3)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    parser.add_argument("--baseline-catalog", type=Path, help="a folder holding another revision's catalog/")
    args = parser.parse_args()
    if args.baseline_catalog is not None and not (args.baseline_catalog / "catalog" / "review.py").is_file():
        sys.exit(f"--baseline-catalog {args.baseline_catalog}: no catalog/review.py in it")
    sizes = [int(s) for s in args.sizes.split(",")]
    cli = modelcat_command()
    now = parse_now(NOW)

    results = []
    with tempfile.TemporaryDirectory(prefix="modelcat-bench-review-") as tmp:
        for versions in sizes:
            repo = Path(tmp) / f"repo-{versions}"
            changed = make_repository(repo, versions)
            out = Path(tmp) / f"review-{versions}"
            phase_times: dict[str, list[float]] = {name: [] for name in PHASES}
            print(f"timing {versions:,} versions ({args.repeat} runs)...", file=sys.stderr, flush=True)
            times = time_interleaved(measurements(repo, cli, out, now, phase_times, args.baseline_catalog), args.repeat)
            report = json.loads((out / "review.json").read_text())
            verified = [(a["model"], a["version"], a["ok"]) for a in report["artifacts"]]
            assert verified == [(*changed, True)], verified
            checks = {c["check"]: c["result"] for c in report["checks"]}
            if args.baseline_catalog is not None:  # the same outcome before and after
                before = json.loads(Path(str(out) + "-before", "review.json").read_text())
                assert {c["check"]: c["result"] for c in before["checks"]} == checks, before["checks"]
            size = (repo / "models.yaml").stat().st_size
            results.append(
                {
                    "versions": versions,
                    "bytes": size,
                    "changed": "@".join(changed),
                    "review_checks": checks,
                    "review_exit_code": report["exit_code"],
                    "times_s": times | phase_times,
                    "median_s": {n: statistics.median(ts) for n, ts in (times | phase_times).items()},
                    "min_s": {n: min(ts) for n, ts in (times | phase_times).items()},
                }
            )

    print(
        f"Python {platform.python_version()} on {platform.platform()} ({platform.machine()}), "
        f"{datetime.date.today().isoformat()}; median (min) of {args.repeat} interleaved runs, seconds.\n"
    )
    before = args.baseline_catalog is not None
    print(
        "| versions | size (MB) | `modelcat validate` | `modelcat review HEAD` | review / validate "
        + ("| review-before | before / validate " if before else "")
        + "| start-up alone |"
    )
    print("|---:|---:|---:|---:|---:|" + ("---:|---:|" if before else "") + "---:|")
    for r in results:
        t, med = r["times_s"], r["median_s"]
        r["ratio"] = med["review"] / med["validate"]
        extra = ""
        if before:
            r["ratio_before"] = med["review_before"] / med["validate"]
            extra = f"| {cell(t['review_before'])} | {r['ratio_before']:.2f}x "
        print(
            f"| {r['versions']:,} | {r['bytes'] / 1e6:.1f} | {cell(t['validate'])} | {cell(t['review'])} "
            f"| {r['ratio']:.2f}x {extra}| {cell(t['startup'])} |"
        )

    print("\nIn-process phases of review (the same calls as `catalog.review.review`, one after the other):\n")
    print("| phase | " + " | ".join(f"{r['versions']:,} versions" for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for name in PHASES:
        label = PHASE_TITLES[name] if name != "evaluate" else f"({PHASE_TITLES[name]})"
        print(f"| {label} | " + " | ".join(cell(r["times_s"][name], 3) for r in results) + " |")
    print("| sum of the phases | " + " | ".join(cell(r["times_s"]["phases"], 3) for r in results) + " |")
    print("| `review()` as one call | " + " | ".join(cell(r["times_s"]["review_inprocess"], 3) for r in results) + " |")
    for r in results:
        r["ratio_inprocess"] = r["median_s"]["review_inprocess"] / r["median_s"]["validate_head"]
        print(
            f"\n{r['versions']:,} versions in-process, both without cyclic GC (as `modelcat review` runs): "
            f"`review()` / validate head = {r['ratio_inprocess']:.2f}x"
        )
    for r in results:
        print(f"\n{r['versions']:,} versions, changed {r['changed']}: review exit {r['review_exit_code']}; "
              + "; ".join(f"{k}: {v}" for k, v in r["review_checks"].items()))  # fmt: skip

    target = f"`modelcat review` of {TARGET_VERSIONS:,} versions, one changed, <= {TARGET_RATIO:g}x `modelcat validate`"
    meta = {"repeat": args.repeat, "baseline_catalog": str(args.baseline_catalog) if before else None}
    report_target(results, target, TARGET_VERSIONS, TARGET_RATIO, args.json, meta)


if __name__ == "__main__":
    main()
