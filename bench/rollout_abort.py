"""Benchmark a rollout's abort on the local target: from the abort decision to every new request
being answered by the base version, with the router's own assignment log as the clock.

Run from the repository root (``make bench``), or:

    .venv/bin/python bench/rollout_abort.py [--repeat 5] [--clients 4] [--json results.json]

The project is the end-to-end tests' (``tests/deploy/project.py``): the demo's models and one
application, ``checkout`` in ``production``, whose fraud-scorer canary is 1.3.0 = 50 / 1.4.0 = 50
(two replicas each), applied by the embedded Terraform. Per repetition, the two
paths below in turn (their order alternating), each from the canary in force with ``--clients``
threads sending keyed requests back to back through the router:

  - **fast switch**: the abort as the rollout controller makes it: ``switch_routes`` to the base
    routes (1.3.0 = 100), then the catalog edited to them and ``modelcat apply`` to bring the rest
    (1.4.0's replica) in line; ``modelcat status`` must then be consistent;
  - **baseline, Terraform**: the catalog edited to the base routes and ``modelcat apply
    --auto-approve`` (what an abort costs without the switch).

The clock starts at the decision (the wall-clock time, UTC, just before the switch or the edit) and
stops at the router's log line (its ``time``: when the answer went out) of the first request answered
after the last one the candidate answered: from there on every request is the base version's. The
client loop runs until 200 answers after the switch (or the apply) returned, then stops; the log
must hold every answer before it is read.

Target (issue #15): <= 2 s, median and worst.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.rollout.switch import switch_routes
from tests.deploy.project import ClientLoop, Project, output
from tests.serving.router_fixtures import logged_assignments

BASE, CANDIDATE = "1.3.0", "1.4.0"
TARGET_SECONDS = 2.0
AFTER = 200  # answers the loop gets after the switch (or apply) returned, before it stops


def _canary(project: Project) -> None:
    """The canary in force, as the catalog says (an apply starts the candidate's replica again)."""
    project.bind(**{BASE: 50, CANDIDATE: 50})
    project.converge()


def _fast(project: Project) -> None:
    result = switch_routes(project.catalog, "checkout", "fraud-scorer", [(BASE, 100)], environment="production")
    if not result.switched:
        raise SystemExit(f"the fast switch did not happen: {result.reason}")


def _terraform(project: Project) -> None:
    project.bind(**{BASE: 100})
    project.ok("apply", "--auto-approve")


def _when(line: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(line["time"]))


def _logged_since(project: Project, since: datetime, answers: int, timeout: float = 60) -> list[dict[str, object]]:
    """The router's assignment lines since ``since``, once it logged at least ``answers`` of them."""
    analytics = Path(project.route().analytics_dir)
    deadline = time.monotonic() + timeout
    while True:
        lines = sorted((x for x in logged_assignments(analytics, "checkout") if _when(x) >= since), key=_when)
        if len(lines) >= answers:
            return lines
        if time.monotonic() > deadline:
            raise SystemExit(f"the router logged {len(lines)} requests since {since}, the clients got {answers}")
        time.sleep(0.05)


def _switch_seconds(lines: list[dict[str, object]], decided: datetime) -> tuple[float, int]:
    """Seconds from ``decided`` to the first answer after the candidate's last one, and how many
    requests the candidate answered after the decision."""
    last = max((i for i, line in enumerate(lines) if line["version"] == CANDIDATE), default=-1)
    after = [line for line in lines[last + 1 :] if _when(line) >= decided]
    if not after or any(line["version"] != BASE for line in after):
        raise SystemExit("the log shows no request answered by the base version after the candidate's last one")
    late = sum(1 for line in lines if line["version"] == CANDIDATE and _when(line) >= decided)
    return (_when(after[0]) - decided).total_seconds(), late


def abort_once(project: Project, path: str, clients: int) -> dict[str, float]:
    _canary(project)
    started = datetime.now(UTC)
    with ClientLoop(project.route().url, workers=clients) as loop:
        while sum(1 for _, version, _, _, _ in loop.answers if version == CANDIDATE) < 20:
            loop.wait_for(10)
        decided = datetime.now(UTC)
        (_fast if path == "fast" else _terraform)(project)
        returned = (datetime.now(UTC) - decided).total_seconds()
        loop.wait_for(AFTER)
    if loop.failures:
        raise SystemExit(f"{len(loop.failures)} failed requests, e.g. {loop.failures[:3]}")
    seconds, late = _switch_seconds(_logged_since(project, started, len(loop.answers)), decided)
    if path == "fast":  # the abort's commit, applied: what runs agrees with the catalog again
        _terraform(project)
    status = project.run("status")
    if status.returncode != 0:
        raise SystemExit(f"status is not consistent after the {path} abort:\n{output(status)}")
    return {"seconds": seconds, "returned": returned, "late": late}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"fast": [], "terraform": []}
    with tempfile.TemporaryDirectory(prefix="modelcat-bench-abort-") as tmp:
        project = Project.create(Path(tmp) / "project")
        try:
            project.ok("apply", "--auto-approve")
            for i in range(args.repeat):
                for path in ("fast", "terraform") if i % 2 == 0 else ("terraform", "fast"):
                    runs[path].append(abort_once(project, path, args.clients))
        finally:
            project.cleanup()

    def cell(path: str, key: str) -> str:
        values = [run[key] for run in runs[path]]
        return f"{statistics.median(values):.2f} s ({max(values):.2f})"

    fast = statistics.median(r["seconds"] for r in runs["fast"])
    baseline = statistics.median(r["seconds"] for r in runs["terraform"])
    worst = max(r["seconds"] for r in runs["fast"])
    print(f"### Abort of a 50/50 canary, {args.clients} clients, median (worst) of {args.repeat}\n")
    print(
        "| path | decision to base only (router log) | call returned | candidate answers after the decision | vs Terraform |"
    )
    print("| --- | --- | --- | --- | --- |")
    for path, label in (
        ("fast", "`switch_routes` (the controller's abort)"),
        ("terraform", "baseline: `modelcat apply`"),
    ):
        late = statistics.median(r["late"] for r in runs[path])
        ratio = statistics.median(r["seconds"] for r in runs[path]) / baseline
        print(f"| {label} | {cell(path, 'seconds')} | {cell(path, 'returned')} | {late:.0f} | {ratio:.2f}x |")
    verdict = "PASS" if fast <= TARGET_SECONDS and worst <= TARGET_SECONDS else "FAIL"
    print(f"\nTarget: <= {TARGET_SECONDS:.0f} s from the abort decision to base only (median and worst): {verdict}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
