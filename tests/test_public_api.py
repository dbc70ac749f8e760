"""The public API is what __all__ says, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

import catalog

PUBLIC = [
    "ArtifactError",
    "ArtifactTooLarge",
    "BindResult",
    "Catalog",
    "CatalogInvalid",
    "CatalogLocked",
    "CatalogNotFound",
    "DigestMismatch",
    "DiskFull",
    "EditRefused",
    "InferenceFailed",
    "InvalidRequest",
    "ModelcatError",
    "NotOnnx",
    "OnnxFacts",
    "Problem",
    "Registered",
    "Report",
    "RoutingTableInvalid",
    "RoutingTableUnreadable",
    "StoreError",
    "UnsafeArtifact",
    "UsageError",
    "VerifyResult",
    "bind_routes",
    "inspect_onnx",
    "load_catalog",
    "register_version",
    "validate_bytes",
    "validate_file",
    "verify_versions",
]


def test_package_all_is_the_documented_api():
    assert sorted(catalog.__all__) == sorted(PUBLIC)


@pytest.mark.parametrize(
    "module",
    [
        "catalog",
        "catalog.errors",
        "catalog.validate",
        "catalog.editing",
        "catalog.filelock",
        "catalog.schema",
        "catalog.domain.models",
        "catalog.domain.rules",
        "catalog.domain.views",
        "catalog.yamlio.loader",
        "catalog.yamlio.positions",
        "catalog.yamlio.roundtrip",
        "catalog.domain.contract",
        "catalog.artifacts.hashing",
        "catalog.artifacts.onnx_facts",
        "catalog.artifacts.staging",
        "catalog.artifacts.verify",
        "catalog.artifacts.stores.local",
        "catalog.artifacts.stores.oci",
        "catalog.register",
        "catalog.gitio",
        "catalog.serving.oip",
        "catalog.serving.listen",
        "catalog.serving.replica",
        "catalog.serving.replica_model",
        "catalog.serving.table",
        "catalog.serving.router",
        "catalog.serving.router_server",
        "catalog.serving.upstream",
        "catalog.terraform",
        "catalog.terraform.runner",
        "catalog.terraform.workspace",
        "catalog.provider.main",
        "catalog.provider.provider",
        "catalog.provider.processes",
        "catalog.provider.runstate",
        "catalog.provider.artifacts",
        "catalog.provider.data_sources",
        "catalog.provider.endpoint",
        "catalog.provider.route",
        "catalog.provider.install",
        "catalog.artifacts.fetch",
        "catalog.cli.fetch_command",
        "catalog.synth",
        "catalog.synth.app",
        "catalog.synth.typed",
        "catalog.synth.kube",
        "catalog.synth.targets.kubernetes",
        "catalog.synth.targets.kubernetes_routing",
        "catalog.domain.diff",
        "catalog.synth.resources",
        "catalog.synth.blast",
        "catalog.cli.diff_command",
        "catalog.cli.diff_render",
        "catalog.synth.targets.kserve",
        "catalog.synth.targets.sagemaker",
        "catalog.policy.check",
        "catalog.policy.findings",
        "catalog.policy.inputs",
        "catalog.policy.oracle",
        "catalog.policy.rego",
        "catalog.policy.render",
        "catalog.policy.settings",
        "catalog.policy.synth_inputs",
        "catalog.policy.waivers",
        "catalog.policy.fixtures",
        "catalog.review",
        "catalog.scaffold",
        "catalog.cli.review_command",
        "catalog.cli.init_command",
        "catalog.cli.serve_command",
    ],
)
def test_every_exported_name_exists(module):
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing


def test_load_catalog_raises_one_error_with_every_problem(write):
    from tests.test_bad_input import MINIMAL

    path = write(
        MINIMAL.replace("weight: 10}", "weight: 11}").replace(
            "enabled: true", "enabled: true\n        sticky_key: X-User"
        )
    )
    with pytest.raises(catalog.CatalogInvalid) as info:
        catalog.load_catalog(path)
    assert info.value.exit_code == 1
    assert sorted(p.code for p in info.value.problems) == ["schema.string_pattern_mismatch"]


def test_domain_does_no_io():
    import ast
    from pathlib import Path

    for source in (Path(catalog.__file__).parent / "domain").glob("*.py"):
        tree = ast.parse(source.read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        imports = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in (n.names if isinstance(n, ast.Import) else [ast.alias(n.module or "")])
        }
        assert not names & {"open", "print"}, source
        assert not imports & {"os", "pathlib", "subprocess", "yaml", "ruamel", "click", "io"}, source
