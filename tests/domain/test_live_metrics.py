"""Live metrics are derived from the routed versions' signatures where an application declares a label:
AUC for a score, accuracy for a class; a version that cannot give one is warned about at its route's line."""

from __future__ import annotations

import json

from catalog.domain.live_metrics import live_metric
from catalog.validate import validate_file
from tests.helpers import MINIMAL, line_of

LABEL = "    outcomes: [{name: is_fraud, kind: label}]\n"
APP_ANCHOR = "    environment: production\n"
WITH_LABEL = MINIMAL.replace(APP_ANCHOR, APP_ANCHOR + LABEL, 1)
SCORE = "outputs: [{name: score, dtype: float32, shape: [batch, 1]}]"


def _metric(write, text: str) -> str | None:
    catalog = validate_file(write(text)).raise_for_errors()
    app = catalog.applications[0]
    return live_metric(catalog, app, app.bindings[0])


def test_a_score_output_gives_auc_and_a_class_output_gives_accuracy(write):
    assert _metric(write, WITH_LABEL) == "auc"
    classes = WITH_LABEL.replace(SCORE, "outputs: [{name: label, dtype: int64, shape: [batch]}]")
    assert _metric(write, classes) == "accuracy"


def test_no_live_metric_without_a_label_outcome(write):
    assert _metric(write, MINIMAL) is None
    conversion = MINIMAL.replace(APP_ANCHOR, APP_ANCHOR + "    outcomes: [{name: c, kind: proportion}]\n", 1)
    assert _metric(write, conversion) is None


def _warnings(cli, path) -> list[dict]:
    result = cli("validate", path, "--format", "json")
    assert result.exit_code == 0, result.output
    return [p for p in json.loads(result.stdout)["problems"] if p["code"].startswith("outcome.")]


def test_a_version_with_several_values_per_row_is_warned_at_its_route_and_gets_no_live_metric(write, cli):
    text = WITH_LABEL.replace(SCORE, "outputs: [{name: score, dtype: float32, shape: [batch, 2]}]", 2)
    path = write(text)
    (first,) = _warnings(cli, path)  # once: the routed versions share their outputs' signature
    assert first["code"] == "outcome.no-live-metric" and first["severity"] == "warning"
    assert first["message"] == (
        "fraud-scorer 1.0.0 gets no live metric on label 'is_fraud': "
        "its output 'score' has shape [batch, 2], not one value per row"
    )
    assert first["line"] == line_of(text, "{version: 1.0.0, weight: 90}")
    assert first["path"] == "applications[checkout].bindings[0].routes[1.0.0].version" and first["hint"]
    assert _metric(write, text) is None


def test_the_demo_checkout_scores_fraud_with_auc():
    from tests.helpers import DEMO

    catalog = validate_file(DEMO).raise_for_errors()
    checkout = next(a for a in catalog.applications if a.name == "checkout")
    assert live_metric(catalog, checkout, checkout.bindings[0]) == "auc"


def test_a_model_that_fails_its_schema_is_reported_not_a_crash_of_the_live_metric_check(write, cli):
    # validation goes on with what did parse: the bound model is missing from it, not a model object
    text = WITH_LABEL.replace("task: classification", "task: classifier", 1)
    assert text != WITH_LABEL
    result = cli("validate", write(text), "--format", "json")
    assert result.exit_code == 1, result.output
    problems = json.loads(result.stdout)["problems"]
    assert any("classifier" in p["message"] for p in problems) and result.stderr == ""
