"""A shadow step in force (a binding's ``mirror:``) on the cloud targets: a Gateway API
``RequestMirror`` filter on kubernetes, a shadow production variant on SageMaker, and a refusal
naming the target on KServe, which cannot copy requests; without a mirror nothing changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog.errors import UsageError
from catalog.serving.table import parse_table
from catalog.synth import synthesize
from catalog.synth.targets import kserve
from catalog.synth.targets import sagemaker as sm
from catalog.validate import load_catalog
from tests.helpers import MINIMAL_WITH_ENVIRONMENTS, line_of, reported_problem
from tests.synth.crds import validate
from tests.synth.plans import context, in_shadow_step, production, with_mirror, with_routes, with_serving

HTTPROUTE_CRD = "gateway.networking.k8s.io_httproutes.yaml"
BINDING = "applications[checkout].bindings[0]"
SHADOW = in_shadow_step(MINIMAL_WITH_ENVIRONMENTS, 20)
NO_SHADOW = SHADOW.replace("        mirror: {version: 1.1.0, percent: 20}\n", "")


def deployed_to(target: str, text: str) -> str:
    assert text.count("    target: kubernetes\n") == 1
    return text.replace("    target: kubernetes\n", f"    target: {target}\n")


def _resources(tmp_path: Path, text: str, target: str) -> dict[str, dict[str, Any]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "models.yaml"
    path.write_text(deployed_to(target, text), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELCAT_SYNTH_CHECK", "all")  # every body built through the provider's typed structs too
        (stack,) = synthesize(load_catalog(path), path, tmp_path / f"out-{target}", target=target).stacks
    return json.loads(stack.path.read_text())["resource"]  # type: ignore[no-any-return]


# kubernetes


def test_the_mirror_is_a_request_mirror_filter_of_the_binding_rule_with_its_percent(tmp_path: Path) -> None:
    res = _resources(tmp_path, SHADOW, "kubernetes")
    route = res["kubernetes_manifest"]["checkout"]
    manifest = route["manifest"]
    assert manifest["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert validate(HTTPROUTE_CRD, manifest) == []
    services = {body["metadata"]["name"]: key for key, body in res["kubernetes_service_v1"].items()}
    binding_rule, *pinned = manifest["spec"]["rules"]
    assert binding_rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/v2/models/fraud-scorer"}}]
    live, shadow = binding_rule["backendRefs"]
    assert (live["weight"], shadow["weight"]) == (100, 0)
    assert binding_rule["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"group": "", "kind": "Service", "name": shadow["name"], "port": 80},
                "percent": 20,
            },
        }
    ]
    # the mirrored version is served (Deployment and Service) and the route waits for both
    key = services[shadow["name"]]
    assert key in res["kubernetes_deployment_v1"]
    assert {f"kubernetes_deployment_v1.{key}", f"kubernetes_service_v1.{key}"} <= set(route["depends_on"])
    # a request pinned to a version asks for that version only: it is not mirrored
    assert pinned and not [rule for rule in pinned if "filters" in rule]


def test_the_crd_check_catches_a_bad_mirror(tmp_path: Path) -> None:
    manifest = _resources(tmp_path, SHADOW, "kubernetes")["kubernetes_manifest"]["checkout"]["manifest"]
    manifest["spec"]["rules"][0]["filters"][0]["requestMirror"]["percent"] = 101
    assert any("maximum" in problem for problem in validate(HTTPROUTE_CRD, manifest))


def test_a_mirror_changes_only_the_binding_rule_on_kubernetes(tmp_path: Path) -> None:
    with_mirror_res = _resources(tmp_path / "a", SHADOW, "kubernetes")
    without = _resources(tmp_path / "b", NO_SHADOW, "kubernetes")
    rules = with_mirror_res["kubernetes_manifest"]["checkout"]["manifest"]["spec"]["rules"]
    assert rules[0].pop("filters")
    assert with_mirror_res == without


def test_behind_the_router_the_mirror_is_in_its_table_and_the_route_has_no_filter() -> None:
    from catalog.synth.targets import kubernetes as k8s

    env = with_mirror(with_routes(production(), "checkout", {"1.3.0": 100, "1.4.0": 0}), "checkout", "1.4.0", 10)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELCAT_SYNTH_CHECK", "all")
        res = k8s.synthesize_bodies(context(env, "kubernetes"))
    (model,) = parse_table(res["kubernetes_config_map_v1"]["checkout"]["data"]["table.json"].encode()).models
    assert model.mirror is not None and (model.mirror.version, model.mirror.percent) == ("1.4.0", 10)
    replicas = {route.version: route.replicas for route in model.routes}
    assert replicas["1.4.0"]  # the mirrored version's Service, where the router sends the copies
    (rule,) = res["kubernetes_manifest"]["checkout"]["manifest"]["spec"]["rules"]
    assert "filters" not in rule  # the router copies the requests: the Gateway must not copy them again


# sagemaker


def _sagemaker(env: Any) -> dict[str, dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELCAT_SYNTH_CHECK", "all")
        return sm.synthesize_bodies(context(env, "sagemaker"))


def test_the_mirror_is_the_sagemaker_shadow_variant_sampling_its_percent(tmp_path: Path) -> None:
    config = _resources(tmp_path, SHADOW, "sagemaker")[sm.CONFIG]["checkout--fraud-scorer"]
    (live,) = config["production_variants"]
    (shadow,) = config["shadow_production_variants"]
    assert (live["variant_name"], live["model_name"]) == ("route-1", "${aws_sagemaker_model.fraud-scorer--1_0_0.name}")
    assert (shadow["variant_name"], shadow["model_name"]) == (
        "route-2",
        "${aws_sagemaker_model.fraud-scorer--1_1_0.name}",
    )
    # SageMaker copies to the shadow variant the share its weight is of the production variant's
    assert shadow["initial_variant_weight"] / live["initial_variant_weight"] == 0.20
    assert shadow["instance_type"] == live["instance_type"] and shadow["initial_instance_count"] >= 1
    assert config["tags"]["modelcat/route-2"] == "1.1.0"
    assert config["tags"]["modelcat/shadow"] == "route-2 20 percent"


def test_the_shadow_variant_is_neither_guarded_nor_autoscaled_and_renames_the_configuration() -> None:
    env = with_routes(production(), "checkout", {"1.3.0": 100, "1.4.0": 0})
    env = with_serving(env, "checkout", replicas=2, min_replicas=2, max_replicas=6)
    before = _sagemaker(env)
    after = _sagemaker(with_mirror(env, "checkout", "1.4.0", 10))
    key = "checkout--fraud-scorer"
    assert "shadow_production_variants" not in before[sm.CONFIG][key]
    assert [v["variant_name"] for v in before[sm.CONFIG][key]["production_variants"]] == ["route-1", "route-2"]
    config = after[sm.CONFIG][key]
    assert [v["variant_name"] for v in config["production_variants"]] == ["route-1"]
    assert [(v["variant_name"], v["initial_variant_weight"]) for v in config["shadow_production_variants"]] == [
        ("route-2", 10)
    ]
    assert config["name"] != before[sm.CONFIG][key]["name"]  # a new configuration, created before the old goes
    assert after[sm.ENDPOINT][key]["name"] == before[sm.ENDPOINT][key]["name"]
    watched = {
        q["metric"]["dimensions"]["VariantName"]
        for alarm in after[sm.ALARM].values()
        if alarm["alarm_name"].startswith(after[sm.ENDPOINT][key]["name"])
        for q in alarm["metric_query"]
        if "metric" in q
    }
    assert watched == {"route-1"}  # the guardrails watch what users are answered by
    assert [k for k in after[sm.SCALING_TARGET] if k.startswith(key)] == [f"{key}--route-1"]
    for other in ("storefront--recommender", "storefront--search-ranker"):
        assert after[sm.CONFIG][other] == before[sm.CONFIG][other]


def test_sagemaker_refuses_a_shadow_variant_beside_two_production_variants() -> None:
    env = with_mirror(
        with_routes(production(), "checkout", {"1.2.0": 50, "1.3.0": 50, "1.4.0": 0}), "checkout", "1.4.0", 10
    )
    with pytest.raises(UsageError, match="application 'checkout', model 'fraud-scorer'") as info:
        _sagemaker(env)
    assert "holds one production variant, and the binding routes 2 versions beside the mirrored 1.4.0" in str(
        info.value
    )


def test_without_a_mirror_sagemaker_configurations_have_no_shadow_variant(tmp_path: Path) -> None:
    configs = _resources(tmp_path, NO_SHADOW, "sagemaker")[sm.CONFIG]
    assert configs and not [c for c in configs.values() if "shadow_production_variants" in c]


# kserve


def test_kserve_refuses_a_mirror_at_its_line_naming_target_environment_application_and_binding(write, cli) -> None:
    text = deployed_to("kserve", SHADOW)
    problem = reported_problem(cli, write(text), "kserve.mirror")
    assert problem["message"].startswith(
        "kserve cannot deploy application 'checkout', model 'fraud-scorer' (environment 'production'): "
        "KServe cannot mirror requests: the copy of 20 % of requests to 1.1.0"
    ), problem
    assert (problem["line"], problem["path"]) == (line_of(text, "mirror: {version: 1.1.0"), f"{BINDING}.mirror")
    assert problem["hint"] and problem["severity"] == "error"


def test_kserve_refuses_a_declared_shadow_step_at_its_line(write, cli) -> None:
    rollout = "        rollout: {strategy: canary, step_percent: 10, shadow: {percent: 5}}\n"
    text = deployed_to("kserve", MINIMAL_WITH_ENVIRONMENTS).replace(
        "        enabled: true\n", "        enabled: true\n" + rollout
    )
    problem = reported_problem(cli, write(text), "kserve.shadow")
    assert "KServe cannot mirror requests: the rollout's shadow step (5 % mirrored)" in problem["message"]
    assert (problem["line"], problem["path"]) == (line_of(text, "shadow: {percent: 5}"), f"{BINDING}.rollout.shadow")


@pytest.mark.parametrize("target", ["kubernetes", "sagemaker", "local"])
def test_a_mirror_is_valid_where_the_target_can_run_it(write, cli, target: str) -> None:
    result = cli("validate", write(deployed_to(target, SHADOW)), "--format", "json")
    assert result.exit_code == 0, result.output


def test_kserve_synth_refuses_a_mirror_naming_application_and_model() -> None:
    env = with_mirror(with_routes(production(), "checkout", {"1.3.0": 100, "1.4.0": 0}), "checkout", "1.4.0", 10)
    with pytest.raises(UsageError, match="application 'checkout', model 'fraud-scorer': KServe cannot mirror"):
        kserve.synthesize_bodies(context(env, "kserve"))
