"""Property: for generated catalogs, the kserve and sagemaker targets' bodies say what the catalog
says (weights, replicas, digests, rollout sizes, alarms), or synth refuses naming the binding for
exactly the reasons the target documents. Built with ``synthesize_bodies`` and every body checked
against the typed structs (``MODELCAT_SYNTH_CHECK=all``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from catalog.domain.deployment import BindingPlan, Environment, environments
from catalog.domain.models import Catalog
from catalog.errors import UsageError
from catalog.synth.base import StackContext
from catalog.synth.targets import kserve
from catalog.synth.targets import sagemaker as sm
from catalog.synth.targets import sagemaker_limits as limits
from catalog.validate import validate_bytes
from tests.synth.generated import catalogs


def _environment(document: dict[str, Any]) -> Environment:
    (env,) = environments(Catalog.model_validate(document))
    return env


def _reported(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(code, display path) of every error validate reports for ``document``."""
    report = validate_bytes(json.dumps(document).encode(), "gen.yaml")
    assert all(p.line > 0 for p in report.errors), report.errors
    return {(p.code, p.path) for p in report.errors}


def _binding_path(document: dict[str, Any], app: str, model: str) -> str:
    (application,) = [a for a in document["applications"] if a["name"] == app]
    index = [b["model"] for b in application["bindings"]].index(model)
    return f"applications[{app}].bindings[{index}]"


def _synth(module: Any, env: Environment) -> dict[str, dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELCAT_SYNTH_CHECK", "all")
        return module.synthesize_bodies(StackContext(f"prod-{module.__name__}", env, "", ""))  # type: ignore[no-any-return]


def _served(env: Environment) -> list[tuple[str, BindingPlan]]:
    return [(a.name, b) for a in env.applications for b in a.bindings if b.routes[0].endpoint.serving.replicas > 0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs("kserve"))
def test_kserve_bodies_say_what_the_catalog_says(document: dict[str, Any]) -> None:
    env = _environment(document)
    served = _served(env)
    too_many = [(app, b.model) for app, b in served if sum(r.weight > 0 for r in b.routes) > 2]
    # validate reports each binding KServe cannot run at its routes; synth refuses it too (same code)
    assert _reported(document) == {
        ("kserve.routed-versions", f"{_binding_path(document, app, model)}.routes") for app, model in too_many
    }
    if too_many:
        with pytest.raises(UsageError, match="KServe splits traffic between two versions at most") as info:
            _synth(kserve, env)
        app, model = too_many[0]
        assert f"application {app!r}, model {model!r}" in str(info.value)
        return
    isvcs = _synth(kserve, env).get(kserve.MANIFEST, {})
    assert sorted(isvcs) == sorted(f"{app}--{b.model}" for app, b in served)
    for app, binding in served:
        manifest = isvcs[f"{app}--{binding.model}"]["manifest"]
        predictor, notes = manifest["spec"]["predictor"], manifest["metadata"]["annotations"]
        routed = [r for r in binding.routes if r.weight > 0]
        served_route = routed[-1]
        e, s = served_route.endpoint, served_route.endpoint.serving
        assert notes["modelcat/digest"] == e.digest and notes["modelcat/version"] == e.version
        uri = predictor["model"]["storageUri"]
        assert uri == e.artifact if e.artifact.startswith("oci://") else uri.endswith(e.digest.removeprefix("sha256:"))
        autoscaled = s.max_replicas > s.min_replicas >= 1
        bounds = (s.min_replicas, s.max_replicas) if autoscaled else (s.replicas, s.replicas)
        assert (predictor["minReplicas"], predictor["maxReplicas"]) == bounds
        assert predictor["scaleTarget"] == s.target_concurrency
        if len(routed) == 2:
            assert predictor["canaryTrafficPercent"] == routed[1].weight
            assert notes["modelcat/stable-version"] == routed[0].version
            assert notes["modelcat/stable-digest"] == routed[0].endpoint.digest
        else:
            assert "canaryTrafficPercent" not in predictor
        rollout = json.loads(notes["modelcat/rollout"])
        assert rollout["steps"] == list(binding.rollout.steps)
        assert rollout["interval_seconds"] == binding.rollout.interval_seconds
        assert rollout.get("max_error_rate") == binding.rollout.max_error_rate
        assert rollout.get("max_p99_latency_ms") == binding.rollout.max_p99_latency_ms


def _sagemaker_refusals(binding: BindingPlan) -> dict[str, tuple[str, str]]:
    """What the sagemaker target must refuse in ``binding``, per its documented limits: code ->
    (the field validate points at, words of the message)."""
    r, found = binding.rollout, {}
    if r.strategy == "canary" and 50 < r.step_percent < 100:
        found["sagemaker.canary-step"] = ("rollout.step_percent", "canary step is 50 %")
    if r.strategy == "linear" and r.step_percent < 100 and not 10 <= r.step_percent <= 50:
        found["sagemaker.linear-step"] = ("rollout.step_percent", "linear steps are 10-50 %")
    if limits.PROVISIONING_SECONDS + r.interval_seconds * len(r.steps) > limits.MAX_DEPLOYMENT_SECONDS:
        found["sagemaker.deployment-time"] = ("rollout.interval_seconds", "longer than the 28800 s")
    if r.max_error_rate is not None and len(binding.routes) > 5:
        found["sagemaker.alarm-variants"] = ("routes", "can watch 5 variants at most")
    return found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs("sagemaker"))
def test_sagemaker_bodies_say_what_the_catalog_says(document: dict[str, Any]) -> None:
    env = _environment(document)
    served = _served(env)
    refusals = [(app, b.model, _sagemaker_refusals(b)) for app, b in served]
    # validate reports each limit at the field that asks for it; synth refuses the first (same code)
    assert _reported(document) == {
        (code, f"{_binding_path(document, app, model)}.{field}")
        for app, model, found in refusals
        for code, (field, _) in found.items()
    }
    refused = [(app, model, found) for app, model, found in refusals if found]
    if refused:
        with pytest.raises(UsageError) as info:
            _synth(sm, env)
        app, model, found = refused[0]
        assert f"application {app!r}, model {model!r}" in str(info.value)
        assert next(iter(found.values()))[1] in str(info.value)
        return
    res = _synth(sm, env)
    settings_ = env.sagemaker
    assert settings_ is not None
    models = res.get(sm.MODEL, {})
    configs, endpoints = res.get(sm.CONFIG, {}), res.get(sm.ENDPOINT, {})
    alarms, targets = res.get(sm.ALARM, {}), res.get(sm.SCALING_TARGET, {})
    assert sorted(configs) == sorted(endpoints) == sorted(f"{app}--{b.model}" for app, b in served)
    expected_models = {(r.endpoint.model, r.endpoint.version): r.endpoint for _, b in served for r in b.routes}
    assert len(models) == len(expected_models)
    names = {}
    for (model, version), e in expected_models.items():
        body = next(
            m
            for m in models.values()
            if m["primary_container"]["environment"]["MODELCAT_VERSION"] == version
            and m["primary_container"]["environment"]["MODELCAT_MODEL"] == model
        )
        assert body["primary_container"]["environment"]["MODELCAT_DIGEST"] == e.digest
        (source,) = body["primary_container"]["model_data_source"]["s3_data_source"]
        assert source["s3_uri"].endswith("/" + e.digest.removeprefix("sha256:"))
        names[(model, version)] = body["name"]
    for app, binding in served:
        key = f"{app}--{binding.model}"
        variants = configs[key]["production_variants"]
        assert [v["initial_variant_weight"] for v in variants] == [r.weight for r in binding.routes]
        for variant, route in zip(variants, binding.routes, strict=True):
            s = route.endpoint.serving
            autoscaled = s.max_replicas > s.min_replicas >= 1
            assert variant["initial_instance_count"] == (s.min_replicas if autoscaled else s.replicas)
            assert variant["instance_type"] == settings_.instance_type
            target_key = f"{key}--{variant['variant_name']}"
            assert (target_key in targets) == autoscaled
            if autoscaled:
                assert (targets[target_key]["min_capacity"], targets[target_key]["max_capacity"]) == (
                    s.min_replicas,
                    s.max_replicas,
                )
        r = binding.rollout
        routing = endpoints[key]["deployment_config"]["blue_green_update_policy"]["traffic_routing_configuration"]
        stepped = r.strategy != "all_at_once" and r.step_percent < 100
        assert routing["type"] == (r.strategy.upper() if stepped else "ALL_AT_ONCE")
        assert routing["wait_interval_in_seconds"] == r.interval_seconds
        size = routing.get("canary_size") or routing.get("linear_step_size")
        assert (size["value"] if size else 100) == (r.step_percent if stepped else 100)
        limits = {"error-rate": r.max_error_rate, "p99-latency": r.max_p99_latency_ms}
        for kind, limit in limits.items():
            alarm = alarms.get(f"{key}--{kind}")
            assert (alarm is not None) == (limit is not None)
            if alarm is not None and limit is not None:
                assert alarm["threshold"] == (limit if kind == "error-rate" else limit * 1000)
                assert alarm.get("alarm_actions") == (
                    [settings_.alarm_topic_arn] if settings_.alarm_topic_arn else None
                )
    text = json.dumps(res)
    for word in ("password", "secret", "access_key", "token"):
        assert word not in text.lower()
