"""The local target's Terraform JSON: deterministic, relative, and equal to the catalog's facts."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from catalog.domain.effective import effective_serving
from catalog.synth import synthesize
from catalog.validate import load_catalog
from tests.helpers import DEMO, ROOT, sha256_file, shadow_step_demo, with_demo_keys
from tests.synth.plans import BUNDLE_DIGEST, BUNDLE_URI, signed_demo

REF = re.compile(r"^\$\{modelcat_endpoint\.([A-Za-z0-9_-]+)\.urls\}$")


def _synth(catalog_path: Path, outdir: Path, **kwargs: Any) -> dict[str, dict[str, Any]]:
    result = synthesize(load_catalog(catalog_path), catalog_path, outdir, **kwargs)
    return {s.name: json.loads(s.path.read_text()) for s in result.stacks}


@pytest.fixture(scope="module")
def demo_stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _synth(DEMO, tmp_path_factory.mktemp("synth") / "out")


def test_one_stack_per_environment(demo_stacks: dict[str, dict[str, Any]]) -> None:
    assert sorted(demo_stacks) == ["production-local", "staging-local"]


def test_output_is_byte_identical_across_runs_and_checkouts(tmp_path: Path) -> None:
    first = synthesize(load_catalog(DEMO), DEMO, tmp_path / "a")
    elsewhere = tmp_path / "deep" / "other" / "checkout"
    elsewhere.mkdir(parents=True)
    shutil.copyfile(DEMO, elsewhere / "models.yaml")
    with_demo_keys(elsewhere)
    second = synthesize(load_catalog(elsewhere / "models.yaml"), elsewhere / "models.yaml", tmp_path / "b")
    third = synthesize(load_catalog(DEMO), DEMO, tmp_path / "c")
    for a, b, c in zip(first.stacks, second.stacks, third.stacks, strict=True):
        assert sha256_file(a.path) == sha256_file(b.path) == sha256_file(c.path)
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()


def test_paths_are_relative_to_the_stack_working_directory(demo_stacks: dict[str, dict[str, Any]]) -> None:
    for name, stack in demo_stacks.items():
        assert stack["terraform"]["backend"] == {"local": {"path": "terraform.tfstate"}}
        (provider,) = stack["provider"]["modelcat"]
        workdir = ROOT / ".modelcat" / "terraform" / name
        assert not os.path.isabs(provider["catalog"]) and not os.path.isabs(provider["run_dir"])
        assert (workdir / provider["catalog"]).resolve() == DEMO.resolve()
        assert (workdir / provider["run_dir"]).resolve() == (ROOT / ".modelcat" / "run" / name).resolve()
        assert stack["terraform"]["required_providers"] == {"modelcat": {"source": "modelcat/modelcat"}}


def test_every_routed_version_is_an_endpoint_labelled_with_its_facts(demo_stacks: dict[str, dict[str, Any]]) -> None:
    catalog = load_catalog(DEMO)
    versions = {(m.name, v.version): v for m in catalog.models for v in m.versions}
    seen = set()
    for app in catalog.applications:
        stack = demo_stacks[f"{app.environment}-local"]
        endpoints = stack["resource"]["modelcat_endpoint"]
        for binding in app.bindings:
            replicas = effective_serving(catalog, binding).replicas
            for route in binding.routes:
                version = versions[(binding.model, route.version)]
                (key,) = [k for k, e in endpoints.items() if e["name"] == f"{app.name}.{binding.model}.{route.version}"]
                body = endpoints[key]
                assert body["digest"] == version.artifact.digest and body["artifact"] == version.artifact.uri
                assert body["replicas"] == replicas
                assert body["lifecycle"] == {"create_before_destroy": True}
                labels = body["labels"]
                assert (labels["modelcat/model"], labels["modelcat/version"]) == (binding.model, route.version)
                assert labels["modelcat/digest"] == version.artifact.digest
                assert labels["modelcat/application"] == app.name
                seen.add((stack["//"]["metadata"]["stackName"], key))
    declared = {(name, key) for name, s in demo_stacks.items() for key in s["resource"]["modelcat_endpoint"]}
    assert declared == seen  # nothing deployed that no application routes to


def test_routes_carry_the_catalog_weights_in_order_with_references(demo_stacks: dict[str, dict[str, Any]]) -> None:
    catalog = load_catalog(DEMO)
    for app in catalog.applications:
        stack = demo_stacks[f"{app.environment}-local"]
        body = stack["resource"]["modelcat_route"][app.name]
        expected = [(b.model, r.version, r.weight, b.sticky_key) for b in app.bindings if b.enabled for r in b.routes]
        got = [(m["name"], r["version"], r["weight"], m.get("sticky_key")) for m in body["model"] for r in m["route"]]
        assert got == expected
        for model in body["model"]:
            for entry in model["route"]:
                (target,) = REF.match(entry["replicas"]).groups()
                endpoint = stack["resource"]["modelcat_endpoint"][target]
                assert (endpoint["model"], endpoint["version"], endpoint["digest"]) == (
                    model["name"],
                    entry["version"],
                    entry["digest"],
                )
        assert stack["output"][f"{app.name}_url"]["value"] == f"${{modelcat_route.{app.name}.url}}"


def test_a_disabled_binding_runs_and_routes_nothing(tmp_path: Path) -> None:
    text = DEMO.read_text().replace(
        "      - model: search-ranker\n", "      - model: search-ranker\n        enabled: false\n"
    )
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with_demo_keys(tmp_path)
    stacks = _synth(path, tmp_path / "out", only=["production"])
    assert list(stacks) == ["production-local"]
    stack = stacks["production-local"]
    assert not [e for e in stack["resource"]["modelcat_endpoint"].values() if e["model"] == "search-ranker"]
    assert "search-ranker" not in {m["name"] for m in stack["resource"]["modelcat_route"]["storefront"]["model"]}


def test_cli_synth_writes_stacks_and_refuses_bad_input(cli, tmp_path: Path, write) -> None:
    out = tmp_path / "out"
    result = cli("synth", "--catalog", DEMO, "--out", out, "--env", "staging", "--format", "json")
    assert result.exit_code == 0, result.output
    (stack,) = json.loads(result.output)["stacks"]
    assert stack["stack"] == "staging-local" and Path(stack["path"]).exists()
    assert stack["sha256"] == sha256_file(Path(stack["path"]))

    unknown = cli("synth", "--catalog", DEMO, "--out", tmp_path / "o2", "--env", "nowhere")
    assert unknown.exit_code == 2 and "nowhere" in unknown.output and "production" in unknown.output

    broken = write(DEMO.read_text().replace("weight: 90}", "weight: 91}"))
    bad = cli("synth", "--catalog", broken, "--out", tmp_path / "o3")
    assert bad.exit_code == 1 and "weight" in bad.output
    assert not (tmp_path / "o3").exists()


def test_every_stack_that_runs_something_gets_one_prometheus_on_loopback(
    demo_stacks: dict[str, dict[str, Any]],
) -> None:
    for name, stack in demo_stacks.items():
        assert stack["resource"]["modelcat_metrics"] == {
            "prometheus": {
                "name": name,
                "host": "127.0.0.1",
                "port": 0,
                "retention": "2d",
                "scrape_interval": "5s",
                "depends_on": [f"modelcat_route.{app_id}" for app_id in sorted(stack["resource"]["modelcat_route"])],
            }
        }
        assert stack["output"]["prometheus_url"]["value"] == "${modelcat_metrics.prometheus.url}"


@pytest.mark.parametrize(("shadow", "tolerance"), [("", 0.05), ("{percent: 20, max_abs_difference: 0.02}", 0.02)])
def test_a_binding_mirror_is_the_routers_mirror_with_its_rollouts_tolerance(
    tmp_path: Path, shadow: str, tolerance: float
) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(shadow_step_demo(shadow))
    with_demo_keys(tmp_path)
    stack = _synth(path, tmp_path / "out", only=["production"])["production-local"]
    models = {m["name"]: m for m in stack["resource"]["modelcat_route"]["checkout"]["model"]}
    assert models["fraud-scorer"]["mirror"] == {"version": "1.4.0", "percent": 20, "max_abs_difference": tolerance}
    storefront = stack["resource"]["modelcat_route"]["storefront"]["model"]
    assert all("mirror" not in model for model in storefront)  # no mirror, no block


def test_a_signed_versions_endpoint_carries_its_bundle_and_the_keys_its_environment_trusts(workspace: Path) -> None:
    trusted = signed_demo(workspace)
    stacks = _synth(workspace / "models.yaml", workspace / "out")
    production = stacks["production-local"]["resource"]["modelcat_endpoint"].values()
    endpoints = {(e["model"], e["version"]): e for e in production}
    signed = endpoints["fraud-scorer", "1.3.0"]
    assert (signed["bundle"], signed["bundle_digest"]) == (BUNDLE_URI, BUNDLE_DIGEST)
    assert signed["require_signatures"] is True and signed["trusted_key"] == trusted
    unsigned = endpoints["fraud-scorer", "1.4.0"]  # production requires signatures: its replicas will refuse
    assert "bundle" not in unsigned and unsigned["require_signatures"] is True and unsigned["trusted_key"] == trusted
    staging = stacks["staging-local"]["resource"]["modelcat_endpoint"].values()  # no rule, unsigned: no check
    assert not [e for e in staging if {"bundle", "require_signatures", "trusted_key"} & set(e)]
