"""Which target each environment is synthesized for, and what plan/apply accept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.errors import UsageError
from catalog.synth import TARGETS, get_target, synthesize
from catalog.validate import load_catalog
from tests.helpers import DEMO, with_demo_keys

STAGING_K8S = """    kubernetes:
      namespace: ml-staging
      gateway: {name: internal-gateway, namespace: gateway-system, grpc_section_name: grpc}
      image: registry.example.com/modelcat/modelcat:0.4.0
      artifact_source: {kind: pvc, pvc: modelcat-artifacts} # a claim holding a copy of artifacts/
"""


def catalog_with(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = DEMO.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    with_demo_keys(tmp_path)
    return path


PRODUCTION_ON_K8S = ("  - name: production\n    target: local\n", "  - name: production\n    target: kubernetes\n")


def test_the_registered_targets() -> None:
    assert TARGETS == ("local", "kubernetes", "kserve", "sagemaker")
    for name in TARGETS:
        assert get_target(name).name == name
    with pytest.raises(UsageError, match="unknown target 'openshift': modelcat cannot synthesize it yet"):
        get_target("openshift")


def test_each_environment_uses_its_own_target_unless_told(tmp_path: Path) -> None:
    path = catalog_with(tmp_path, PRODUCTION_ON_K8S)
    catalog = load_catalog(path)
    own = synthesize(catalog, path, tmp_path / "own")
    assert [(s.name, s.target) for s in own.stacks] == [
        ("production-kubernetes", "kubernetes"),
        ("staging-local", "local"),
    ]
    forced = synthesize(catalog, path, tmp_path / "forced", target="local")
    assert [s.name for s in forced.stacks] == ["production-local", "staging-local"]


def test_a_target_without_its_settings_block_names_the_environment(tmp_path: Path, cli) -> None:
    path = catalog_with(tmp_path, (STAGING_K8S, ""))
    with pytest.raises(UsageError, match="environment 'staging' has no kubernetes: block"):
        synthesize(load_catalog(path), path, tmp_path / "out", target="kubernetes")
    result = cli("synth", "--catalog", path, "--target", "kubernetes", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "staging" in result.output and "kubernetes:" in result.output
    only = cli("synth", "--catalog", path, "--target", "kubernetes", "--env", "production", "--out", tmp_path / "p")
    assert only.exit_code == 0, only.output


def test_every_target_synthesizes_from_the_declared_one_or_the_option(tmp_path: Path, cli) -> None:
    path = catalog_with(
        tmp_path, ("  - name: production\n    target: local\n", "  - name: production\n    target: sagemaker\n")
    )
    result = cli("synth", "--catalog", path, "--out", tmp_path / "o", "--format", "json")
    assert result.exit_code == 0, result.output
    stacks = [(s["stack"], s["target"]) for s in json.loads(result.output)["stacks"]]
    assert stacks == [("production-sagemaker", "sagemaker"), ("staging-local", "local")]
    for target in ("kubernetes", "kserve", "sagemaker"):
        forced = cli("synth", "--catalog", DEMO, "--target", target, "--env", "production", "--out", tmp_path / target)
        assert forced.exit_code == 0, forced.output
        assert (tmp_path / target / "stacks" / f"production-{target}" / "cdk.tf.json").exists()
    assert cli("synth", "--catalog", path, "--target", "local", "--out", tmp_path / "l").exit_code == 0


def test_cli_synth_for_kubernetes(cli, tmp_path: Path) -> None:
    result = cli("synth", "--catalog", DEMO, "--target", "kubernetes", "--out", tmp_path / "o", "--format", "json")
    assert result.exit_code == 0, result.output
    stacks = json.loads(result.output)["stacks"]
    assert [(s["stack"], s["target"]) for s in stacks] == [
        ("production-kubernetes", "kubernetes"),
        ("staging-kubernetes", "kubernetes"),
    ]


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_and_apply_refuse_what_they_cannot_apply(cli, tmp_path: Path, command: str) -> None:
    forced = cli(
        command, "--catalog", DEMO, "--target", "kubernetes", *(["--auto-approve"] if command == "apply" else [])
    )
    assert forced.exit_code == 2
    assert "modelcat synth --target kubernetes" in forced.output and "your own Terraform" in forced.output
    path = catalog_with(tmp_path, PRODUCTION_ON_K8S)
    declared = cli(command, "--catalog", path, *(["--auto-approve"] if command == "apply" else []))
    assert declared.exit_code == 2
    assert "environment 'production' deploys to kubernetes" in declared.output and "--target local" in declared.output
    assert not (tmp_path / ".modelcat").exists()  # refused before anything was written
