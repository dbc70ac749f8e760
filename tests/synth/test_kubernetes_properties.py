"""Property: for generated catalogs, the kubernetes target's bodies say what the catalog says.

Weights (HTTPRoute backendRefs or the router's table), replicas, HPA bounds and metric, digests,
rollout sizes (maxSurge and the rollout annotation) and PDBs. The bodies are built without the
CDK app (``synthesize_bodies``, the very code the target runs before its one ``add_override`` per
resource type), and every body is also built with the typed structs (``MODELCAT_SYNTH_CHECK=all``).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.domain.deployment import environments
from catalog.serving.table import parse_table
from catalog.synth.base import StackContext
from catalog.synth.targets import kubernetes as k8s
from catalog.synth.targets.kubernetes_routing import MAX_RULES
from catalog.validate import validate_bytes

VERSIONS = ["1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0+build.7", "3.1.4"]
SIGNATURE = {
    "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 1]}],
}


def _weights(draw: Any, n: int) -> list[int]:
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1)))
    edges = [0, *cuts, 100]
    return [b - a for a, b in itertools.pairwise(edges)]


@st.composite
def catalogs(draw: Any) -> dict[str, Any]:
    oci = draw(st.booleans())
    source = (
        {"kind": "oci"}
        if oci
        else draw(
            st.sampled_from(
                [
                    {"kind": "http", "base_url": "https://artifacts.example.com/m", "registry_secret": "art-token"},
                    {"kind": "http", "base_url": "https://artifacts.example.com/m"},
                    {"kind": "pvc", "pvc": "models-claim"},
                ]
            )
        )
    )
    counter = iter(range(10_000))
    models = []
    for m in range(draw(st.integers(1, 3))):
        versions = []
        for v in VERSIONS[: draw(st.integers(1, len(VERSIONS)))]:
            hexdigest = f"{m:02x}{next(counter):04x}".ljust(64, "a")
            uri = (
                f"oci://registry.example.com/models/m{m}@sha256:{'b' * 64}"
                if oci
                else f"store/sha256/{hexdigest[:2]}/{hexdigest}"
            )
            versions.append(
                {
                    "version": v,
                    "artifact": {
                        "uri": uri,
                        "digest": f"sha256:{hexdigest}",
                        "size_bytes": draw(st.integers(512, 10**9)),
                    },
                    "signature": SIGNATURE,
                    "trained_at": "2026-01-01",
                    "registered_at": "2026-01-02T00:00:00Z",
                    "stage": "production",
                }
            )
        models.append({"name": f"model-{m}", "owner": "o@example.com", "task": "other", "versions": versions})
    apps = []
    for a in range(draw(st.integers(1, 3))):
        chosen = draw(
            st.lists(st.sampled_from(models), min_size=1, max_size=len(models), unique_by=lambda m: m["name"])
        )
        bindings = []
        for model in chosen:
            picked = draw(st.lists(st.sampled_from([v["version"] for v in model["versions"]]), min_size=1, unique=True))
            lo = draw(st.integers(0, 3))
            hi = draw(st.integers(max(lo, 1), 6))
            binding: dict[str, Any] = {
                "model": model["name"],
                "routes": [
                    {"version": v, "weight": w} for v, w in zip(picked, _weights(draw, len(picked)), strict=True)
                ],
                "serving": {
                    "replicas": draw(st.integers(max(lo, 1), hi)),
                    "min_replicas": lo,
                    "max_replicas": hi,
                    "target_concurrency": draw(st.integers(1, 64)),
                },
            }
            if draw(st.booleans()):
                binding["serving"]["resources"] = draw(
                    st.sampled_from([{"cpu": "500m"}, {"memory": "1Gi"}, {"cpu": "2", "memory": "512Mi"}])
                )
            if draw(st.booleans()):
                binding["sticky_key"] = "x-user-id"
            strategy = draw(st.sampled_from(["all_at_once", "canary", "linear"]))
            if strategy != "all_at_once":
                binding["rollout"] = {
                    "strategy": strategy,
                    "step_percent": draw(st.sampled_from([5, 10, 20, 25, 50])),
                    "interval_seconds": draw(st.integers(0, 900)),
                    "guardrails": {"max_error_rate": 0.01},
                }
            bindings.append(binding)
        apps.append({"name": f"app-{a}", "owner": "o@example.com", "environment": "prod", "bindings": bindings})
    kubernetes: dict[str, Any] = {
        "namespace": "ml",
        "gateway": {"name": "gw"},
        "image": "registry.example.com/modelcat:1.0.0",
        "artifact_source": source,
    }
    if draw(st.booleans()):
        kubernetes["image_pull_secret"] = "pull"
        kubernetes["hostnames"] = ["ml.example.com"]
    return {
        "apiVersion": "modelcat/v1",
        "environments": [{"name": "prod", "target": "kubernetes", "kubernetes": kubernetes}],
        "models": models,
        "applications": apps,
    }


def _max_surge(rollout: Any) -> str:
    return "100%" if rollout.strategy == "all_at_once" else f"{rollout.step_percent}%"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs())
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
