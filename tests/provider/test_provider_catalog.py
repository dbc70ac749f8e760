"""The provider's data sources and its refusals, under real Terraform, with a hand-written .tf.

The catalog is a copy of the demo's models.yaml in the Terraform folder, named relatively
(``catalog = "models.yaml"``), with ``artifacts`` linked next to it, so relative paths resolve
against Terraform's working directory and artifact paths against the catalog's folder.
"""

from __future__ import annotations

import json
import shutil

import click
import pytest

from catalog.cli.render import problem_lines
from catalog.provider.runstate import load_endpoint_records
from catalog.validate import validate_bytes
from tests.helpers import with_demo_keys
from tests.provider.terraform_fixtures import DEMO, FRAUD_130, FRAUD_140, ROOT, Workspace, diagnostics, errors_text

pytestmark = pytest.mark.slow

HEADER = """
terraform {
  required_providers {
    modelcat = { source = "modelcat/modelcat" }
  }
}

provider "modelcat" {
  catalog = "models.yaml"
  run_dir = "run"
}
"""

DATA = """
data "modelcat_application" "checkout" {
  name = "checkout"
}

data "modelcat_model" "fraud" {
  name = "fraud-scorer"
}

output "weights" {
  value = data.modelcat_application.checkout.weights
}

output "bindings" {
  value = jsondecode(data.modelcat_application.checkout.routes_json)
}

output "environment" {
  value = data.modelcat_application.checkout.environment
}

output "versions" {
  value = data.modelcat_model.fraud.versions
}

output "digests" {
  value = data.modelcat_model.fraud.digests
}

output "auc" {
  value = jsondecode(data.modelcat_model.fraud.metrics_json)["1.4.0"]["auc"]
}
"""


@pytest.fixture(scope="module")
def space(workspace: Workspace) -> Workspace:
    shutil.copyfile(DEMO, workspace.dir / "models.yaml")
    with_demo_keys(workspace.dir)
    (workspace.dir / "artifacts").symlink_to(ROOT / "artifacts")
    (workspace.dir / "main.tf").write_text(HEADER + DATA)
    assert workspace.init().retcode == 0
    workspace.run_dir = workspace.dir / "run"
    return workspace


def test_data_sources_give_the_catalogs_weights_routes_and_versions(space: Workspace) -> None:
    result = space.apply()
    assert result.retcode == 0, errors_text(result)
    outputs = space.outputs()
    assert outputs["weights"] == {"fraud-scorer@1.3.0": 90, "fraud-scorer@1.4.0": 10}
    assert outputs["environment"] == "production"
    [binding] = outputs["bindings"]
    assert binding["model"] == "fraud-scorer" and binding["sticky_key"] == "x-user-id" and binding["enabled"]
    assert binding["serving"] == {  # the binding's own serving over defaults.serving
        "replicas": 3,
        "min_replicas": 2,
        "max_replicas": 6,
        "target_concurrency": 8,
        "cpu": "500m",
        "memory": "256Mi",
    }
    assert [(r["version"], r["weight"], r["digest"]) for r in binding["routes"]] == [
        ("1.3.0", 90, FRAUD_130["digest"]),
        ("1.4.0", 10, FRAUD_140["digest"]),
    ]
    assert binding["routes"][0]["artifact"] == FRAUD_130["artifact"]
    assert outputs["versions"] == ["1.2.0", "1.3.0", "1.4.0"]
    assert outputs["digests"]["1.4.0"] == FRAUD_140["digest"]
    assert outputs["auc"] == 0.928


def test_an_unknown_model_is_an_error_naming_the_known_ones(space: Workspace) -> None:
    (space.dir / "typo.tf").write_text('data "modelcat_model" "typo" {\n  name = "fraud-scorr"\n}\n')
    try:
        result = space.plan()
    finally:
        (space.dir / "typo.tf").unlink()
    assert result.retcode == 1
    text = errors_text(result)
    assert "no model named 'fraud-scorr'" in text
    assert "did you mean 'fraud-scorer'?" in text and "recommender" in text


def test_a_broken_catalog_fails_the_plan_with_the_validation_message(space: Workspace) -> None:
    catalog = space.dir / "models.yaml"
    good = catalog.read_text()
    catalog.write_text(good.replace("{version: 1.4.0, weight: 10}", "{version: 1.5.0, weight: 10}"))
    # what `modelcat validate models.yaml` prints, run in the Terraform folder
    report = validate_bytes(catalog.read_bytes(), "models.yaml")
    expected = [click.unstyle(line) for line in problem_lines(report.problems)]
    try:
        result = space.plan()
    finally:
        catalog.write_text(good)
    assert result.retcode == 1
    errors = [d for d in diagnostics(result) if d["severity"] == "error"]
    assert errors, result.value
    detail = errors[0]["detail"]
    assert "models.yaml:" in detail and "has no version 1.5.0" in detail
    line = next(x for x in expected if "has no version 1.5.0" in x)
    assert line.split(":")[1].isdigit()  # file:line:column
    assert detail.splitlines() == expected


def test_an_endpoint_with_the_wrong_digest_is_refused_naming_both(space: Workspace) -> None:
    wrong = {**FRAUD_130, "digest": FRAUD_140["digest"]}
    body = {"name": "wrong", **wrong, "replicas": 1}
    (space.dir / "wrong.tf.json").write_text(json.dumps({"resource": {"modelcat_endpoint": {"wrong": body}}}))
    try:
        result = space.apply()
    finally:
        (space.dir / "wrong.tf.json").unlink()
    assert result.retcode == 1
    text = errors_text(result)
    assert "digest mismatch" in text
    assert FRAUD_130["digest"] in text and FRAUD_140["digest"] in text
    assert load_endpoint_records(space.run_dir) == []  # nothing started, nothing recorded
