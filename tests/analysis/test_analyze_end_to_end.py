"""`modelcat analyze` over real logs: seeded shoppers of the demo's storefront A/B test written to the
stack's analytics folder the way the routers and the feedback endpoint write them (two weight
epochs, one version converting better), analysed by the warehouse, the telemetry fallback and the
statistics, and rendered: the same bytes twice, valid against the schema, a verdict with reasons."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from catalog.feedback.logs import SegmentWriter, tables_log
from catalog.layout import analytics_dir, run_dir, stack_name, state_root
from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # DuckDB over the logs and scipy's import: seconds on a loaded machine

START = datetime(2026, 12, 1, tzinfo=UTC)
EPOCHS = ((START, {"2.1.0": 90, "2.2.0": 10}), (START + timedelta(days=1), {"2.1.0": 50, "2.2.0": 50}))
CONVERSION = {"2.1.0": 0.10, "2.2.0": 0.14}
PERIOD = ("--since", "2026-12-01T00:00:00Z", "--until", "2026-12-03T00:00:00Z")


def _time(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def write_shoppers(root: Path, shoppers: int = 3000, seed: int = 14) -> None:
    rng = random.Random(seed)
    tables = [hashlib.sha256(json.dumps(w, sort_keys=True).encode()).hexdigest() for _, w in EPOCHS]
    log = tables_log(root, "storefront")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        "".join(
            json.dumps({"table": sha, "time": _time(t0), "weights": {"recommender": w}}) + "\n"
            for sha, (t0, w) in zip(tables, EPOCHS, strict=True)
        )
    )
    lines: list[tuple[datetime, dict[str, object]]] = []
    events: list[tuple[datetime, dict[str, object]]] = []
    for n in range(shoppers):
        t = START + timedelta(seconds=rng.randrange(2 * 86400))
        epoch = 0 if t < EPOCHS[1][0] else 1
        version = "2.1.0" if rng.random() * 100 < EPOCHS[epoch][1]["2.1.0"] else "2.2.0"
        request = f"req-{n}"
        lines.append((t, {
            "time": _time(t), "request_id": request, "model": "recommender", "version": version,
            "digest": "sha256:" + "0" * 64, "assignment": "sticky", "bucket": n % 100,
            "key_hash": hashlib.sha256(f"shopper-{n}".encode()).hexdigest()[:32], "status": 200,
            "replica": "127.0.0.1:1", "latency_ms": rng.uniform(5, 50), "table": tables[epoch],
        }))  # fmt: skip
        if rng.random() < CONVERSION[version]:
            at = t + timedelta(minutes=3)
            events.append((at, {
                "event_id": f"evt-{n}", "request_id": request, "unit_hash": None, "outcome": "conversion",
                "value": 1.0, "time": _time(at), "received": _time(at),
            }))  # fmt: skip
    for stream, records in (("assignments", lines), ("outcomes", events)):
        writer = SegmentWriter(root, stream, "storefront")
        for t, record in sorted(records, key=lambda r: r[0]):  # in time order, as a router writes them
            writer.append(json.dumps(record) + "\n", t.date().isoformat())
        writer.close()


def test_analyze_reads_the_logs_and_gives_the_same_valid_document_each_time(cli, workspace: Path):
    catalog = workspace / "models.yaml"
    write_shoppers(analytics_dir(run_dir(state_root(catalog), stack_name("production", "local"))))

    first = cli("analyze", "storefront", "--model", "recommender", *PERIOD, "--catalog", catalog, "--format", "json")
    second = cli("analyze", "storefront", "--model", "recommender", *PERIOD, "--catalog", catalog, "--format", "json")
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    document = json.loads(first.stdout)
    schema = json.loads((ROOT / "schemas" / "analysis.schema.json").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(document)) == []

    baseline, candidate = document["versions"]
    assert (baseline["version"], candidate["version"]) == ("2.1.0", "2.2.0")
    assert baseline["units"] + candidate["units"] == 3000
    assert candidate["outcomes"]["conversion"]["mean"] > baseline["outcomes"]["conversion"]["mean"]
    assert candidate["verdict"] in ("promote", "hold", "rollback") and candidate["reasons"]
    assert [e["declared"] for e in document["epochs"]] == [w for _, w in EPOCHS]
    assert not document["srm"]
    # nothing runs: no Prometheus, no router to ask; the assignment log's numbers, and the notes say why
    assert document["source"]["telemetry"] == "assignment-log" and document["source"]["notes"]
    assert document["history"] and {p["version"] for p in document["history"]} == {"2.1.0", "2.2.0"}

    page = workspace / "storefront.html"
    html = cli("analyze", "storefront", "--model", "recommender", *PERIOD, "--catalog", catalog,
               "--format", "html", "--output", page)  # fmt: skip
    assert html.exit_code == 0 and page.read_text(encoding="utf-8").count("<svg") >= 3
