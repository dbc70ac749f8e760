"""Property: for generated catalogs, the kubernetes target's bodies say what the catalog says.

Weights (HTTPRoute backendRefs or the router's table), replicas, HPA bounds and metric, digests,
rollout sizes (maxSurge and the rollout annotation) and PDBs. The bodies are built without the
CDK app (``synthesize_bodies``, the very code the target runs before its one ``add_override`` per
resource type), and every body is also built with the typed structs (``MODELCAT_SYNTH_CHECK=all``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from catalog.domain.deployment import environments
from catalog.serving.table import parse_table
from catalog.synth.base import StackContext
from catalog.synth.targets import kubernetes as k8s
from catalog.synth.targets.kubernetes.routing import MAX_RULES
from catalog.validate import validate_bytes
from tests.synth.generated import catalogs


def _max_surge(rollout: Any) -> str:
    return "100%" if rollout.strategy == "all_at_once" else f"{rollout.step_percent}%"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs("kubernetes"))
def test_bodies_say_what_the_catalog_says(document: dict[str, Any]) -> None:
    report = validate_bytes(json.dumps(document).encode(), "gen.yaml")
    assert report.ok, [p.message for p in report.errors][:3]
    (env,) = environments(report.catalog)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELCAT_SYNTH_CHECK", "all")
        res = k8s.synthesize_bodies(StackContext("prod-kubernetes", env, "", ""))
    deployments, hpas = res["kubernetes_deployment_v1"], res.get("kubernetes_horizontal_pod_autoscaler_v2", {})
    services, budgets = res["kubernetes_service_v1"], res.get("kubernetes_pod_disruption_budget_v1", {})
    for app in env.applications:
        routed = any(b.sticky_key for b in app.bindings)
        route_spec = res["kubernetes_manifest"][app.id]["manifest"]["spec"]
        if routed:
            table = parse_table(res["kubernetes_config_map_v1"][app.id]["data"]["table.json"].encode())
            assert route_spec["rules"][0]["backendRefs"][0]["name"] == services[f"{app.id}--router"]["metadata"]["name"]
        else:
            assert len(route_spec["rules"]) <= MAX_RULES
        for i, binding in enumerate(app.bindings):
            expected = [(r.version, r.weight) for r in binding.routes]
            if routed:
                model = table.models[i]
                assert model.name == binding.model and model.sticky_key == binding.sticky_key
                assert [(r.version, r.weight) for r in model.routes] == expected
                assert [r.digest for r in model.routes] == [r.endpoint.digest for r in binding.routes]
            else:
                rule = route_spec["rules"][i]
                assert rule["matches"][0]["path"]["value"] == f"/v2/models/{binding.model}"
                names = {services[r.endpoint.id]["metadata"]["name"]: r.weight for r in binding.routes}
                assert {b["name"]: b["weight"] for b in rule["backendRefs"]} == names
            for route in binding.routes:
                e, s = route.endpoint, route.endpoint.serving
                body = deployments[e.id]
                autoscaled = s.max_replicas > s.min_replicas >= 1
                assert body["spec"]["replicas"] == str(s.min_replicas if autoscaled else s.replicas)
                assert ("lifecycle" in body) == autoscaled
                assert body["metadata"]["annotations"]["modelcat/digest"] == e.digest
                assert body["metadata"]["annotations"]["modelcat/version"] == e.version
                pod = body["spec"]["template"]["spec"]
                fetch, replica = pod["init_container"][0], pod["container"][0]
                assert fetch["args"][fetch["args"].index("--digest") + 1] == e.digest
                assert fetch["args"][fetch["args"].index("--size") + 1] == str(e.size_bytes)
                assert replica["args"][replica["args"].index("--digest") + 1] == e.digest
                assert body["spec"]["strategy"]["rolling_update"] == {
                    "max_surge": _max_surge(binding.rollout),
                    "max_unavailable": "0",
                }
                rollout = json.loads(body["metadata"]["annotations"]["modelcat/rollout"])
                assert rollout["steps"] == list(binding.rollout.steps)
                assert rollout["interval_seconds"] == binding.rollout.interval_seconds
                assert (e.id in hpas) == autoscaled
                if autoscaled:
                    spec = hpas[e.id]["spec"]
                    assert (spec["min_replicas"], spec["max_replicas"]) == (s.min_replicas, s.max_replicas)
                    assert spec["metric"][0]["pods"]["target"]["average_value"] == str(s.target_concurrency)
                assert (e.id in budgets) == (s.min_replicas >= 2)
