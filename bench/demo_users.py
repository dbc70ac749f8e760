"""Simulated users for the demo: keyed requests through an application's router, then their outcomes.

Each user (``user-<seed>-<i>``) sends requests with its key in the binding's sticky header, so the
router keeps it on one version; the version that answered (the ``x-model-version`` header) decides
the user's chance of the outcome (``--rate VERSION=P``), drawn from a generator seeded by the run's
seed and the user, so a rerun reports the same outcomes. The outcomes are posted to the router's
``POST /v2/feedback`` by unit (the sticky key's value), as an application would report conversions.

With ``--label NAME`` (a label outcome, e.g. checkout's ``is_fraud``) each user sends its own seeded
features, and the label of its last request is drawn from the score the model answered (1 with
that chance), posted by request id as chargebacks would be: the live metric (AUC) then has
something to measure.

    python bench/demo_users.py storefront --users 8000 --outcome conversion \
        --rate 2.1.0=0.10 --rate 2.2.0=0.13
    python bench/demo_users.py checkout --users 12000 --label is_fraud
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from catalog.deploy.status import router_record
from catalog.deploy.traffic import example_request
from catalog.layout import run_dir, stack_name, state_root
from catalog.serving.router_telemetry import prediction_of
from catalog.telemetry.prometheus import MetricsDir, PrometheusRecord
from catalog.validate import validate_file

BATCH = 500


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("application")
    parser.add_argument("--catalog", type=Path, default=Path("models.yaml"))
    parser.add_argument("--model", help="the model to ask (default: the application's first binding)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--requests-per-user", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--outcome", help="the outcome to report (declared by the application)")
    parser.add_argument("--rate", action="append", default=[], metavar="VERSION=P", help="chance of the outcome")
    parser.add_argument("--label", help="a label outcome to report, drawn from each answer's score")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--while-running",
        type=int,
        metavar="PID",
        help="keep sending batches of --users new users until process PID exits (a rollout controller)",
    )
    args = parser.parse_args(argv)
    rates = {version: float(p) for version, _, p in (r.partition("=") for r in args.rate)}

    catalog = validate_file(args.catalog).raise_for_errors()
    route, app = router_record(args.catalog, catalog, args.application)
    url = route.url
    binding = next(b for b in app.bindings if b.enabled and (args.model is None or b.model == args.model))
    model = next(m for m in catalog.models if m.name == binding.model)
    body = example_request(next(v for v in model.versions if v.version == binding.routes[0].version))
    if binding.sticky_key is None:
        print(f"{args.application}'s binding of {model.name} has no sticky_key: users cannot be kept on one version")
        return 2

    users: list[str] = []
    served: dict[str, str] = {}
    scored: dict[str, tuple[str, float]] = {}  # user -> (request id, score) of its last answer
    failed = Counter[int]()
    events: list[dict[str, Any]] = []
    with httpx.Client(timeout=30, trust_env=False) as client, ThreadPoolExecutor(args.concurrency) as pool:

        def visit(user: str) -> tuple[str, str | None, int, tuple[str, float] | None]:
            version, status, score = None, 200, None
            request = _features(body, random.Random(f"{args.seed}:{user}:features")) if args.label else body
            for _ in range(args.requests_per_user):
                response = client.post(
                    f"{url}/v2/models/{model.name}/infer", json=request, headers={binding.sticky_key or "": user}
                )
                status = response.status_code
                if status == 200:
                    version = response.headers["x-model-version"]
                    value = prediction_of(response.content)
                    score = None if value is None else (response.headers["x-request-id"], value)
            return user, version, status, score

        while True:  # one batch of --users users; more while --while-running's process runs
            batch = [f"user-{args.seed}-{i}" for i in range(len(users), len(users) + args.users)]
            users += batch
            batch_served: dict[str, str] = {}
            batch_scored: dict[str, tuple[str, float]] = {}
            for user, version, status, score in pool.map(visit, batch):
                if version is None:
                    failed[status] += 1
                else:
                    batch_served[user] = version
                if score is not None:
                    batch_scored[user] = score
            served |= batch_served
            scored |= batch_scored
            batch_events = _events(args, rates, batch_served, batch_scored)
            events += batch_events
            if not _post_feedback(client, url, batch_events):
                return 1
            if args.while_running is None or not _running(args.while_running):
                break

    per_version = Counter(served.values())
    split = ", ".join(f"{v}: {n}" for v, n in sorted(per_version.items()))
    print(f"{args.application}: {len(users)} simulated users of {model.name} ({split})", end="")
    if failed:
        print(f"; {sum(failed.values())} got no answer ({dict(failed)})", end="")
    if args.label:
        labelled = sum(e["value"] for e in events if e["outcome"] == args.label)
        print(f"; {args.label} reported for {len(scored)} answers ({labelled} labelled 1)", end="")
    if args.outcome:
        converted = Counter(served[e["unit"]] for e in events if e["outcome"] == args.outcome and e["value"])
        rates_seen = ", ".join(f"{v}: {converted[v]}/{n}" for v, n in sorted(per_version.items()))
        print(f"; {args.outcome} reported ({rates_seen})", end="")
    print()
    _wait_for_a_scrape(args.catalog, app.environment)
    return 0


def _events(
    args: argparse.Namespace, rates: dict[str, float], served: dict[str, str], scored: dict[str, tuple[str, float]]
) -> list[dict[str, Any]]:
    """The outcome events of these users: the outcome drawn from their version's rate, the label from the score."""
    events: list[dict[str, Any]] = []
    if args.outcome:
        for user, version in served.items():
            draw = random.Random(f"{args.seed}:{user}").random()
            events.append(
                {
                    "event_id": f"{args.outcome}-{user}",
                    "unit": user,
                    "outcome": args.outcome,
                    "value": 1 if draw < rates.get(version, 0.0) else 0,
                }
            )
    if args.label:
        for user, (request_id, score) in scored.items():
            draw = random.Random(f"{args.seed}:{user}:label").random()
            events.append(
                {"event_id": f"{args.label}-{request_id}", "request_id": request_id, "outcome": args.label,
                 "value": 1 if draw < score else 0}
            )  # fmt: skip
    return events


def _post_feedback(client: httpx.Client, url: str, events: list[dict[str, Any]]) -> bool:
    """Post ``events`` to the router in batches; False (having said why) when one is refused."""
    for start in range(0, len(events), BATCH):
        response = client.post(f"{url}/v2/feedback", json={"events": events[start : start + BATCH]})
        if response.status_code != 200:
            print(f"feedback refused ({response.status_code}): {response.text[:300]}", file=sys.stderr)
            return False
    return True


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_for_a_scrape(catalog: Path, environment: str, deadline_s: float = 60.0) -> None:
    """Wait until the stack's Prometheus has scraped every target after the last request (it scrapes
    every few seconds), so an analysis right after this sees the whole traffic; nothing without one."""
    record = PrometheusRecord.read(MetricsDir(run_dir(state_root(catalog), stack_name(environment, "local"))))
    if record is None:
        return
    sent = datetime.now(UTC)
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=10, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                targets = client.get(f"{record.url}/api/v1/targets").json()["data"]["activeTargets"]
            except (httpx.HTTPError, ValueError, KeyError):
                return  # not answering: the analysis reads the routers' own counters then
            scraped = [datetime.fromisoformat(t["lastScrape"]) for t in targets]
            if scraped and min(scraped) > sent:
                return
            time.sleep(0.2)


def _features(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """``body`` with each floating-point input's values drawn from a standard normal (a user's own features)."""
    inputs = [
        {**tensor, "data": [rng.gauss(0.0, 1.0) for _ in tensor["data"]]}
        if tensor["datatype"].startswith("FP")
        else tensor
        for tensor in body["inputs"]
    ]
    return {**body, "inputs": inputs}


if __name__ == "__main__":
    sys.exit(main())
