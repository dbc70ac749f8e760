"""The kubernetes target serves OIP gRPC: each replica on a named ``grpc`` port, each version's
Service with an h2c ``grpc`` port, and, where the Gateway routes the bindings and has a gRPC
listener, a GRPCRoute with the HTTPRoute's weights and backends, valid for the Gateway API (npm
``@kubernetes-models/gateway-api``, whose models validate against the upstream schemas; ``make test``
installs it into ``.venv/gateway-api-models``)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from catalog.errors import UsageError
from catalog.serving.table import parse_table
from catalog.synth import synthesize
from catalog.synth.resources import synthesize_resources
from catalog.synth.targets.kubernetes import synthesize_bodies
from catalog.validate import load_catalog
from tests.helpers import DEMO, MINIMAL_WITH_ENVIRONMENTS, line_of, reported_problem
from tests.synth.kubernetes_models import GATEWAY_API, validate
from tests.synth.plans import context, in_shadow_step, production

HTTP_GATEWAY = "      gateway: {name: public-gateway, namespace: gateway-system, section_name: https}\n"
GRPC_GATEWAY = HTTP_GATEWAY.replace("section_name: https}", "section_name: https, grpc_section_name: grpc}")
CANARY = MINIMAL_WITH_ENVIRONMENTS.replace(HTTP_GATEWAY, GRPC_GATEWAY)  # fraud-scorer 1.0.0 at 90 %, 1.1.0 at 10 %
SHADOW = in_shadow_step(CANARY, 20)  # 1.0.0 at 100 %, 1.1.0 at 0 % and mirrored 20 %
GRPC = "inference.GRPCInferenceService"


@pytest.fixture(scope="module")
def demo() -> dict[str, dict[str, dict[str, Any]]]:
    return synthesize_resources(load_catalog(DEMO), DEMO, "kubernetes")


def _resources(tmp_path: Path, text: str) -> dict[str, dict[str, Any]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELCAT_SYNTH_CHECK", "all")  # every body built through the provider's typed structs too
        (stack,) = synthesize(load_catalog(path), path, tmp_path / "out", target="kubernetes").stacks
    return json.loads(stack.path.read_text())["resource"]  # type: ignore[no-any-return]


def _routes(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {
        key: body for key, body in resources.get("kubernetes_manifest", {}).items() if body["manifest"]["kind"] == kind
    }


def test_every_replica_serves_grpc_on_a_named_port_its_service_exposes_as_h2c(
    demo: dict[str, dict[str, dict[str, Any]]],
) -> None:
    seen = 0
    for resources in demo.values():
        for key, deployment in resources["kubernetes_deployment_v1"].items():
            if key.endswith("--router"):
                continue
            (replica,) = deployment["spec"]["template"]["spec"]["container"]
            args = replica["args"]
            assert args[args.index("--grpc-port") + 1] == "8081", key
            assert {"name": "grpc", "container_port": 8081, "protocol": "TCP"} in replica["port"], key
            ports = {p["name"]: p for p in resources["kubernetes_service_v1"][key]["spec"]["port"]}
            assert ports["grpc"] == {
                "name": "grpc",
                "port": 8081,
                "target_port": "grpc",
                "protocol": "TCP",
                "app_protocol": "kubernetes.io/h2c",
            }, key
            assert ports["http"]["port"] == 80 and "app_protocol" not in ports["http"], key
            seen += 1
    assert seen == 6  # the demo's versions with replicas: 5 in production, 1 in staging


def test_grpc_routes_are_valid_for_the_gateway_api_and_a_broken_one_is_not(
    demo: dict[str, dict[str, dict[str, Any]]], tmp_path: Path
) -> None:
    routes = {
        f"{stack}/{key}": body["manifest"]
        for stack, res in demo.items()
        for key, body in _routes(res, "GRPCRoute").items()
    }
    assert sorted(routes) == [
        "production-kubernetes/checkout--grpc",  # to its router
        "production-kubernetes/storefront--grpc",  # to its router
        "staging-kubernetes/retention-campaigns--grpc",  # to the versions
    ]
    shadow = _routes(_resources(tmp_path, SHADOW), "GRPCRoute")["checkout--grpc"]["manifest"]
    manifests = [*routes.values(), shadow]
    broken = []
    for mutate in (
        lambda spec: spec["rules"][0]["backendRefs"][0].__setitem__("weight", "100"),
        lambda spec: spec["rules"][0]["matches"][0]["headers"][0].__setitem__("name", "x model"),
        lambda spec: spec["rules"][0]["matches"][0]["method"].__setitem__("type", "Prefix"),
        lambda spec: spec.__setitem__("rules", spec["rules"] * 17),
    ):
        manifest = copy.deepcopy(shadow)
        mutate(manifest["spec"])
        broken.append(manifest)
    results = validate(GATEWAY_API, [*manifests, *broken], tmp_path)
    assert results[: len(manifests)] == [{"ok": True}] * len(manifests), results
    errors = [r.get("error", "") for r in results[len(manifests) :]]
    assert "backendRefs/0/weight must be integer" in errors[0], errors
    assert "headers/0/name must match pattern" in errors[1], errors
    assert "method/type must be equal to one of the allowed values" in errors[2], errors
    assert "rules must NOT have more than 16 items" in errors[3], errors


def test_a_grpc_route_carries_the_http_routes_weights_and_backends_on_the_grpc_port(tmp_path: Path) -> None:
    res = _resources(tmp_path, CANARY)
    http, grpc = _routes(res, "HTTPRoute")["checkout"], _routes(res, "GRPCRoute")["checkout--grpc"]
    (parent,) = grpc["manifest"]["spec"]["parentRefs"]
    assert parent["sectionName"] == "grpc" and http["manifest"]["spec"]["parentRefs"][0]["sectionName"] == "https"
    assert grpc["manifest"]["spec"]["hostnames"] == http["manifest"]["spec"]["hostnames"]
    assert sorted(grpc["depends_on"]) == sorted(http["depends_on"])  # no traffic before the versions roll out
    http_rules, grpc_rules = http["manifest"]["spec"]["rules"], grpc["manifest"]["spec"]["rules"]
    assert len(http_rules) == len(grpc_rules) == 3  # the binding's rule, then one per version (pinned)
    for h, g in zip(http_rules, grpc_rules, strict=True):
        assert [(b["name"], b["weight"], b["port"]) for b in g["backendRefs"]] == [
            (b["name"], b["weight"], 8081) for b in h["backendRefs"]
        ]
    services = {
        s["metadata"]["name"]: s["metadata"]["labels"]["modelcat/version"]
        for s in res["kubernetes_service_v1"].values()
    }
    binding, *pinned = grpc_rules
    assert [(services[b["name"]], b["weight"]) for b in binding["backendRefs"]] == [("1.0.0", 90), ("1.1.0", 10)]
    model = {"type": "Exact", "name": "x-model-name", "value": "fraud-scorer"}
    assert binding["matches"] == [{"method": {"type": "Exact", "service": GRPC}, "headers": [model]}]
    for rule in pinned:
        (backend,) = rule["backendRefs"]
        version = {"type": "Exact", "name": "x-model-version", "value": services[backend["name"]]}
        assert rule["matches"] == [{"method": {"type": "Exact", "service": GRPC}, "headers": [model, version]}]


def test_a_shadow_step_mirrors_the_grpc_calls_of_the_binding_rule_to_the_grpc_port(tmp_path: Path) -> None:
    res = _resources(tmp_path, SHADOW)
    binding, *pinned = _routes(res, "GRPCRoute")["checkout--grpc"]["manifest"]["spec"]["rules"]
    live, shadow = binding["backendRefs"]
    assert (live["weight"], shadow["weight"]) == (100, 0)
    mirror = {"backendRef": {"group": "", "kind": "Service", "name": shadow["name"], "port": 8081}, "percent": 20}
    assert binding["filters"] == [{"type": "RequestMirror", "requestMirror": mirror}]
    assert not [rule for rule in pinned if "filters" in rule]


def test_without_a_grpc_listener_there_is_no_grpc_route(tmp_path: Path) -> None:
    res = _resources(tmp_path, MINIMAL_WITH_ENVIRONMENTS)
    assert _routes(res, "HTTPRoute") and not _routes(res, "GRPCRoute")
    (service,) = {key: s for key, s in res["kubernetes_service_v1"].items() if "1_0_0" in key}.values()
    assert [p["name"] for p in service["spec"]["port"]] == ["http", "grpc"]  # in-cluster gRPC all the same


def test_a_grpc_listener_that_is_the_http_one_is_refused_by_validate_and_synth(cli: Any, tmp_path: Path) -> None:
    text = MINIMAL_WITH_ENVIRONMENTS.replace(
        HTTP_GATEWAY, HTTP_GATEWAY.replace("https}", "https, grpc_section_name: https}")
    )
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    problem = reported_problem(cli, path, "kubernetes.grpc-listener")
    assert problem["line"] == line_of(text, "grpc_section_name"), problem
    assert "the same listener 'https'" in problem["message"], problem
    env = production()  # the API's guard, for a plan that did not come through validate
    assert env.kubernetes is not None
    gateway = env.kubernetes.gateway.model_copy(update={"grpc_section_name": env.kubernetes.gateway.section_name})
    env = dataclasses.replace(env, kubernetes=env.kubernetes.model_copy(update={"gateway": gateway}))
    with pytest.raises(
        UsageError, match="environment 'production': the GRPCRoutes and the HTTPRoutes .* grpc_section_name"
    ):
        synthesize_bodies(context(env, "kubernetes"))


def test_routers_take_grpc_on_a_named_port_and_send_to_the_versions_grpc_addresses_from_their_table(
    demo: dict[str, dict[str, dict[str, Any]]],
) -> None:
    res = demo["production-kubernetes"]
    services = res["kubernetes_service_v1"]
    for app in ("checkout", "storefront"):
        (router,) = res["kubernetes_deployment_v1"][f"{app}--router"]["spec"]["template"]["spec"]["container"]
        assert router["args"][router["args"].index("--grpc-port") + 1] == "8081"
        assert {"name": "grpc", "container_port": 8081, "protocol": "TCP"} in router["port"]
        service = services[f"{app}--router"]
        (grpc_port,) = [p for p in service["spec"]["port"] if p["name"] == "grpc"]
        assert (grpc_port["port"], grpc_port["app_protocol"]) == (8081, "kubernetes.io/h2c")
        table = parse_table(res["kubernetes_config_map_v1"][app]["data"]["table.json"].encode(), "table.json")
        for model in table.models:
            for route in model.routes:
                (url,) = route.replicas
                host = url.removeprefix("http://")
                assert route.grpc_replicas == [f"{host}:8081"], (app, model.name, route.version)
        # the Gateway sends each of the application's models, by the call's metadata, to the router's gRPC port
        (rule,) = res["kubernetes_manifest"][f"{app}--grpc"]["manifest"]["spec"]["rules"]
        assert rule["backendRefs"] == [
            {"group": "", "kind": "Service", "name": service["metadata"]["name"], "port": 8081, "weight": 1}
        ]
        models = [m.name for m in table.models]
        assert [m["headers"] for m in rule["matches"]] == [
            [{"type": "Exact", "name": "x-model-name", "value": name}] for name in models
        ]
        assert res["kubernetes_manifest"][f"{app}--grpc"]["depends_on"] == [
            f"kubernetes_deployment_v1.{app}--router",
            f"kubernetes_service_v1.{app}--router",
        ]
