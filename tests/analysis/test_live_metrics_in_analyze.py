"""`modelcat analyze` puts each version's live metric (its labelled predictions' AUC or accuracy) beside
its offline metrics: in the decision document, valid against its schema, and in every rendering."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from tests.feedback.helpers import assignment, at, event, write_stack_logs
from tests.helpers import DEMO, ROOT

SCORES = {"r1": ("1.3.0", 0.9), "r2": ("1.3.0", 0.2), "r3": ("1.3.0", 0.4), "r4": ("1.3.0", 0.5), "r5": ("1.4.0", 0.7)}
LABELS = {"r1": 1, "r2": 0, "r3": 1, "r4": 0}  # 1.3.0: the frauds rank 4 and 2 of 4, AUC = (6 - 3) / (2 * 2)


def _checkout(write) -> Path:
    path = write(DEMO.read_text())
    write_stack_logs(
        path,
        "checkout",
        [
            assignment(rid, version, at(0), f"user-{rid}", model="fraud-scorer") | {"prediction": p}
            for rid, (version, p) in SCORES.items()
        ],
        [event(f"e-{rid}", "is_fraud", label, at(48), request_id=rid) for rid, label in LABELS.items()],
    )
    return path


def test_analyze_puts_each_versions_live_metric_beside_its_offline_one(cli, write):
    path = _checkout(write)
    result = cli("analyze", "checkout", "--catalog", path, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    versions = {v["version"]: v for v in document["versions"]}
    assert versions["1.3.0"]["offline_metrics"]["auc"] == 0.917
    assert versions["1.3.0"]["live_metrics"] == {"is_fraud": {"name": "auc", "value": 0.75, "n": 4, "positives": 2}}
    assert versions["1.4.0"]["live_metrics"] == {"is_fraud": {"name": "auc", "value": None, "n": 0, "positives": 0}}
    schema = json.loads((ROOT / "schemas" / "analysis.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)

    text = cli("analyze", "checkout", "--catalog", path).stdout
    rows = {
        line.split()[0]: line.rstrip()
        for line in text.splitlines()
        if line.split()[1:2] in (["baseline"], ["candidate"])
    }
    row = rows["1.3.0"]
    assert row.rstrip().endswith("is_fraud: auc=0.75 (n=4)") and "LIVE METRICS" in text
    assert rows["1.4.0"].endswith("is_fraud: auc=- (n=0)")  # none of its predictions has a label yet
    assert "is_fraud: auc=0.75 (n=4)" in cli("analyze", "checkout", "--catalog", path, "--format", "markdown").stdout
    assert "is_fraud: auc=0.75 (n=4)" in cli("analyze", "checkout", "--catalog", path, "--format", "html").stdout


def test_analyze_of_a_binding_without_labels_shows_no_live_metrics(cli, write):
    path = _checkout(write)
    result = cli("analyze", "storefront", "--model", "recommender", "--catalog", path, "--format", "json")
    assert result.exit_code == 0, result.output
    assert all(v["live_metrics"] == {} for v in json.loads(result.stdout)["versions"])
    assert "LIVE METRICS" not in cli("analyze", "storefront", "--model", "recommender", "--catalog", path).stdout
