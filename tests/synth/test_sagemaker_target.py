"""The sagemaker target: golden file, variants and weights, rollout compiled to SageMaker's
blue/green policy, guardrail alarms, autoscaling, create-before-destroy, typed bindings, refusals,
no secret and determinism."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from catalog.domain.deployment import Environment
from catalog.errors import UsageError
from catalog.synth import synthesize
from catalog.synth.targets import sagemaker as sm
from catalog.synth.targets import sagemaker_limits as limits
from catalog.synth.typed import TypedBindingError
from catalog.validate import load_catalog
from tests.helpers import DEMO, ROOT
from tests.synth.golden import check_golden, synthesized_three_ways
from tests.synth.plans import context, production, with_rollout, with_routes, with_serving

GOLDEN = ROOT / "tests" / "golden" / "sagemaker"


def _synth(catalog_path: Path, outdir: Path) -> dict[str, Any]:
    result = synthesize(load_catalog(catalog_path), catalog_path, outdir, target="sagemaker", only=["production"])
    (stack,) = result.stacks
    return json.loads(stack.path.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _synth(DEMO, tmp_path_factory.mktemp("sagemaker") / "out")


def _bodies(env: Environment) -> dict[str, dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELCAT_SYNTH_CHECK", "all")
        return sm.synthesize_bodies(context(env, "sagemaker"))


def test_golden_file(stack: dict[str, Any]) -> None:
    """The demo catalog's production stack, normalized; MODELCAT_UPDATE_GOLDEN=1 rewrites it."""
    check_golden(GOLDEN / "production-sagemaker.json", stack)


def test_provider_block_holds_the_region_only(stack: dict[str, Any]) -> None:
    assert stack["provider"] == {"aws": [{"region": "eu-west-1"}]}
    assert stack["terraform"]["required_providers"] == {"aws": {"source": "hashicorp/aws", "version": "6.69.1"}}
    assert stack["terraform"]["backend"] == {"local": {"path": "terraform.tfstate"}}


def test_one_model_per_version_with_its_bytes_pinned(stack: dict[str, Any]) -> None:
    env = production()
    settings = env.sagemaker
    assert settings is not None
    versions = {(e.model, e.version): e for e in env.endpoints if e.serving.replicas > 0}
    models = stack["resource"][sm.MODEL]
    assert sorted(models) == sorted(f"{m}--{v.replace('.', '_')}" for m, v in versions)
    for (model, version), e in versions.items():
        body = models[f"{model}--{version.replace('.', '_')}"]
        hexdigest = e.digest.removeprefix("sha256:")
        container = body["primary_container"]
        assert container["image"] == settings.image
        assert container["environment"] == {
            "MODELCAT_MODEL": model,
            "MODELCAT_VERSION": version,
            "MODELCAT_DIGEST": e.digest,
        }
        (source,) = container["model_data_source"]["s3_data_source"]
        assert source == {
            "s3_uri": f"{settings.artifact_bucket}/sha256/{hexdigest[:2]}/{hexdigest}",
            "s3_data_type": "S3Object",
            "compression_type": "None",
        }
        assert body["execution_role_arn"] == settings.execution_role_arn
        assert hexdigest[:12] in body["name"] and len(body["name"]) <= 63
        assert body["tags"]["modelcat/digest"] == e.digest
        assert body["lifecycle"] == {"create_before_destroy": True}


def test_one_variant_per_route_with_the_catalog_weight_and_replicas(stack: dict[str, Any]) -> None:
    env = production()
    configs, endpoints = stack["resource"][sm.CONFIG], stack["resource"][sm.ENDPOINT]
    for app in env.applications:
        for binding in app.bindings:
            key = f"{app.name}--{binding.model}"
            config = configs[key]
            assert config["lifecycle"] == {"create_before_destroy": True}
            assert endpoints[key]["endpoint_config_name"] == f"${{{sm.CONFIG}.{key}.name}}"
            variants = config["production_variants"]
            assert [v["variant_name"] for v in variants] == [f"route-{i}" for i in range(1, len(binding.routes) + 1)]
            for variant, route in zip(variants, binding.routes, strict=True):
                s = route.endpoint.serving
                autoscaled = s.max_replicas > s.min_replicas >= 1
                assert variant["initial_variant_weight"] == route.weight
                assert variant["initial_instance_count"] == (s.min_replicas if autoscaled else s.replicas)
                assert variant["instance_type"] == "ml.c5.large"
                model_id = f"{binding.model}--{route.version.replace('.', '_')}"
                assert variant["model_name"] == f"${{{sm.MODEL}.{model_id}.name}}"
                assert config["tags"][f"modelcat/{variant['variant_name']}"] == route.version


def test_a_changed_configuration_gets_a_new_name_the_endpoint_keeps_its_own() -> None:
    env = production()
    before = _bodies(env)
    after = _bodies(with_routes(env, "checkout", {"1.3.0": 50, "1.4.0": 50}))
    key = "checkout--fraud-scorer"
    assert after[sm.CONFIG][key]["name"] != before[sm.CONFIG][key]["name"]
    assert after[sm.ENDPOINT][key]["name"] == before[sm.ENDPOINT][key]["name"]
    unchanged = "storefront--search-ranker"
    assert after[sm.CONFIG][unchanged] == before[sm.CONFIG][unchanged]
    # new bytes for a version: a new model name (the old model is destroyed after the new one exists)
    swapped = _bodies(with_routes(env, "checkout", {"1.3.0": 90, "1.4.0": 10}, digest="sha256:" + "cd" * 32))
    model = "fraud-scorer--1_3_0"
    assert swapped[sm.MODEL][model]["name"] != before[sm.MODEL][model]["name"]


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        (
            {"strategy": "canary", "step_percent": 10, "interval_seconds": 600},
            {"type": "CANARY", "canary_size": 10, "wait": 600},
        ),
        (
            {"strategy": "linear", "step_percent": 25, "interval_seconds": 120},
            {"type": "LINEAR", "linear_step_size": 25, "wait": 120},
        ),
        ({"strategy": "all_at_once", "step_percent": 100, "interval_seconds": 0}, {"type": "ALL_AT_ONCE", "wait": 0}),
        ({"strategy": "canary", "step_percent": 100, "interval_seconds": 60}, {"type": "ALL_AT_ONCE", "wait": 60}),
    ],
)
def test_the_rollout_block_becomes_the_blue_green_policy(rollout: dict[str, Any], expected: dict[str, Any]) -> None:
    env = with_rollout(production(), "checkout", **rollout)
    policy = _bodies(env)[sm.ENDPOINT]["checkout--fraud-scorer"]["deployment_config"]["blue_green_update_policy"]
    routing = policy["traffic_routing_configuration"]
    assert routing["wait_interval_in_seconds"] == expected["wait"]
    _assert_routing(routing, expected)
    steps = env.applications[0].bindings[0].rollout.steps
    assert policy["maximum_execution_timeout_in_seconds"] == max(
        600, limits.PROVISIONING_SECONDS + expected["wait"] * len(steps)
    )


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        ({"strategy": "canary", "explicit_steps": (5, 100)}, {"type": "CANARY", "canary_size": 5}),
        ({"strategy": "linear", "explicit_steps": (25, 50, 75, 100)}, {"type": "LINEAR", "linear_step_size": 25}),
        ({"strategy": "canary", "explicit_steps": (20, 40, 60, 80, 100)}, {"type": "LINEAR", "linear_step_size": 20}),
        ({"strategy": "linear", "explicit_steps": (10, 100)}, {"type": "CANARY", "canary_size": 10}),
        ({"strategy": "linear", "explicit_steps": (50, 100)}, {"type": "LINEAR", "linear_step_size": 50}),
        ({"strategy": "canary", "explicit_steps": (100,)}, {"type": "ALL_AT_ONCE"}),
    ],
)
def test_a_steps_list_becomes_the_traffic_routing_that_runs_it(
    rollout: dict[str, Any], expected: dict[str, Any]
) -> None:
    env = with_rollout(production(), "checkout", step_percent=100, interval_seconds=300, **rollout)
    policy = _bodies(env)[sm.ENDPOINT]["checkout--fraud-scorer"]["deployment_config"]["blue_green_update_policy"]
    _assert_routing(policy["traffic_routing_configuration"], expected)


def _assert_routing(routing: dict[str, Any], expected: dict[str, Any]) -> None:
    """``routing`` is of ``expected["type"]``, with the canary or linear size ``expected`` names (and no other)."""
    assert routing["type"] == expected["type"]
    for size in ("canary_size", "linear_step_size"):
        if size in expected:
            assert routing[size] == {"type": "CAPACITY_PERCENT", "value": expected[size]}
        else:
            assert size not in routing


def test_guardrails_become_alarms_that_roll_back(stack: dict[str, Any]) -> None:
    env = production()
    alarms, endpoints = stack["resource"].get(sm.ALARM, {}), stack["resource"][sm.ENDPOINT]
    expected_alarms = set()
    for app in env.applications:
        for binding in app.bindings:
            key, r = f"{app.name}--{binding.model}", binding.rollout
            kinds = [
                k
                for k, limit in (("error-rate", r.max_error_rate), ("p99-latency", r.max_p99_latency_ms))
                if limit is not None
            ]
            rollback = endpoints[key]["deployment_config"].get("auto_rollback_configuration")
            names = [a["alarm_name"] for a in rollback["alarms"]] if rollback else []
            assert names == [f"${{{sm.ALARM}.{key}--{k}.alarm_name}}" for k in kinds]
            endpoint_name = endpoints[key]["name"]
            variants = [f"route-{i}" for i in range(1, len(binding.routes) + 1)]
            for kind in kinds:
                expected_alarms.add(f"{key}--{kind}")
                alarm = alarms[f"{key}--{kind}"]
                assert alarm["alarm_name"] == f"{endpoint_name}-{kind}"
                assert alarm["alarm_actions"] == ["arn:aws:sns:eu-west-1:123456789012:modelcat-rollout-alarms"]
                watched = [q["metric"] for q in alarm["metric_query"] if "metric" in q]
                assert {m["dimensions"]["EndpointName"] for m in watched} == {endpoint_name}
                assert sorted({m["dimensions"]["VariantName"] for m in watched}) == variants
                (returned,) = [q for q in alarm["metric_query"] if q.get("return_data")]
                if kind == "error-rate":
                    assert alarm["threshold"] == r.max_error_rate
                    assert {m["metric_name"] for m in watched} == {"Invocation5XXErrors", "Invocations"}
                    assert returned["expression"].startswith("IF(")
                else:
                    assert alarm["threshold"] == r.max_p99_latency_ms * 1000  # ModelLatency is in microseconds
                    assert {(m["metric_name"], m["stat"]) for m in watched} == {("ModelLatency", "p99")}
                    assert (
                        returned["expression"]
                        == "MAX([" + ",".join(f"p99_{i}" for i in range(1, len(variants) + 1)) + "])"
                    )
    assert expected_alarms and set(alarms) == expected_alarms


def test_autoscaled_variants_get_a_target_and_a_concurrency_policy() -> None:
    env = with_serving(production(), "checkout", replicas=2, min_replicas=2, max_replicas=6, target_concurrency=12)
    env = with_serving(env, "storefront", replicas=3, min_replicas=3, max_replicas=3)
    bodies = _bodies(env)
    targets, policies = bodies[sm.SCALING_TARGET], bodies[sm.SCALING_POLICY]
    endpoint = "checkout--fraud-scorer"
    for variant in ("route-1", "route-2"):
        key = f"{endpoint}--{variant}"
        assert targets[key] == {
            "service_namespace": "sagemaker",
            "scalable_dimension": "sagemaker:variant:DesiredInstanceCount",
            "resource_id": f"endpoint/${{{sm.ENDPOINT}.{endpoint}.name}}/variant/{variant}",
            "min_capacity": 2,
            "max_capacity": 6,
        }
        tracking = policies[key]["target_tracking_scaling_policy_configuration"]
        assert tracking["target_value"] == 12.0
        assert tracking["predefined_metric_specification"]["predefined_metric_type"] == sm.CONCURRENCY_METRIC
        assert policies[key]["resource_id"] == f"${{{sm.SCALING_TARGET}.{key}.resource_id}}"
    assert not [k for k in targets if k.startswith("storefront--recommender")]  # min == max: no autoscaling
    counts = [v["initial_instance_count"] for v in bodies[sm.CONFIG]["storefront--recommender"]["production_variants"]]
    assert counts == [3, 3]


@pytest.mark.parametrize(
    ("rollout", "words"),
    [
        (
            {"strategy": "canary", "step_percent": 60, "interval_seconds": 60},
            "canary step is 50 % of capacity at most, the rollout asks for 60 %",
        ),
        (
            {"strategy": "linear", "step_percent": 5, "interval_seconds": 60},
            "linear steps are 10-50 % of capacity, the rollout asks for 5 %",
        ),
        ({"strategy": "canary", "step_percent": 10, "interval_seconds": 4000}, "waits 3600 s at most between steps"),
        ({"strategy": "linear", "step_percent": 10, "interval_seconds": 3000}, "longer than the 28800 s"),
        (
            {"strategy": "canary", "explicit_steps": (5, 25, 50, 100), "interval_seconds": 60},
            "moves a canary and then the rest, or equal linear steps, the rollout asks for steps of 5, 25, 50, 100 %",
        ),
        (
            {"strategy": "canary", "explicit_steps": (60, 100), "interval_seconds": 60},
            "canary step is 50 % of capacity at most, the rollout asks for 60 %",
        ),
    ],
)
def test_rollouts_sagemaker_cannot_run_are_refused_naming_application_and_model(
    rollout: dict[str, Any], words: str
) -> None:
    env = with_rollout(production(), "checkout", **rollout)
    with pytest.raises(UsageError, match="application 'checkout', model 'fraud-scorer'") as info:
        sm.synthesize_bodies(context(env, "sagemaker"))
    assert words in str(info.value)


def test_more_variants_than_an_alarm_can_watch_are_refused() -> None:
    env = with_rollout(
        production(), "checkout", strategy="canary", step_percent=10, interval_seconds=60, max_error_rate=0.01
    )
    weights = {"1.3.0": 20, "1.4.0": 20}
    routes = with_routes(env, "checkout", weights)
    binding = routes.applications[0].bindings[0]
    many = binding.routes * 3  # six variants, twelve metrics for the error-rate alarm
    app = dataclasses.replace(routes.applications[0], bindings=(dataclasses.replace(binding, routes=many),))
    env = dataclasses.replace(routes, applications=(app, *routes.applications[1:]))
    with pytest.raises(UsageError, match="can watch 5 variants at most, the binding routes 6"):
        sm.synthesize_bodies(context(env, "sagemaker"))


def test_staging_without_a_sagemaker_block_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="environment 'staging' has no sagemaker: block"):
        synthesize(load_catalog(DEMO), DEMO, tmp_path / "out", target="sagemaker")


def test_a_misspelled_attribute_is_caught_at_synth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def misspelled(k: Any, ep: sm.SageMakerEndpoint) -> Any:
        return k.SagemakerEndpointConfigurationConfig(name=ep.config_name, production_variant=[])  # not ..._variants

    monkeypatch.setattr(sm, "endpoint_configuration", misspelled)
    with pytest.raises(TypedBindingError, match="production_variant"):
        synthesize(load_catalog(DEMO), DEMO, tmp_path / "out", target="sagemaker", only=["production"])
    assert not list((tmp_path / "out").rglob("cdk.tf.json"))  # nothing written


def test_a_mistyped_attribute_is_caught_at_synth(monkeypatch: pytest.MonkeyPatch) -> None:
    if not __debug__:
        pytest.skip("jsii checks types only without python -O")
    original = sm.scaling_target

    def mistyped(k: Any, s: Any) -> Any:
        body = original(k, s)
        values = body if isinstance(body, dict) else body._values
        return k.AppautoscalingTargetConfig(**{**values, "min_capacity": "2"})  # a string, not a number

    monkeypatch.setattr(sm, "scaling_target", mistyped)
    env = with_serving(production(), "checkout", replicas=2, min_replicas=2, max_replicas=6)
    with pytest.raises(TypedBindingError, match="min_capacity"):
        sm.synthesize_bodies(context(env, "sagemaker"))


def test_without_the_extra_the_target_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(package: str, *modules: str) -> Any:
        raise ModuleNotFoundError(f"No module named {package!r}")

    monkeypatch.setattr(sm, "import_bindings", missing)
    with pytest.raises(UsageError, match=r"pip install 'modelcat\[sagemaker\]'"):
        sm.load_modules()


def test_no_secret_value_is_synthesized(stack: dict[str, Any]) -> None:
    text = json.dumps(stack)
    assert "arn:aws:iam::123456789012:role/modelcat-sagemaker-execution" in text  # the role, by ARN
    for word in ("password", "secret_key", "access_key", "AKIA", "token", "aws_secret"):
        assert word.lower() not in text.lower()


def test_output_is_byte_identical_across_runs_and_checkouts(tmp_path: Path) -> None:
    first, second, elsewhere = synthesized_three_ways(tmp_path, "sagemaker", ["production"])
    assert first == second == elsewhere
