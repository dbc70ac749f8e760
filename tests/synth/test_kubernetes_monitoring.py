"""The kubernetes target's PodMonitor: valid for the Prometheus Operator (npm
``@kubernetes-models/prometheus-operator``, whose models validate against the upstream schemas;
``make test`` installs it into ``.venv/prometheus-operator-models``), and selecting exactly the
pods of the routers and replicas, with the target labels the telemetry queries use."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from catalog.synth.resources import synthesize_resources
from catalog.validate import load_catalog
from tests.helpers import DEMO
from tests.synth.kubernetes_models import PROMETHEUS_OPERATOR, validate


@pytest.fixture(scope="module")
def stacks() -> dict[str, dict[str, dict[str, Any]]]:
    return synthesize_resources(load_catalog(DEMO), DEMO, "kubernetes")


def _pod_monitors(stacks: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {
        f"{stack}/{key}": body["manifest"]
        for stack, resources in stacks.items()
        for key, body in resources.get("kubernetes_manifest", {}).items()
        if body["manifest"]["kind"] == "PodMonitor"
    }


def test_every_stack_has_one_pod_monitor_valid_for_the_prometheus_operator(
    stacks: dict[str, dict[str, dict[str, Any]]], tmp_path: Path
) -> None:
    monitors = _pod_monitors(stacks)
    assert sorted(monitors) == [
        "production-kubernetes/modelcat--pod-monitor",
        "staging-kubernetes/modelcat--pod-monitor",
    ]
    broken = copy.deepcopy(next(iter(monitors.values())))
    broken["spec"]["podMetricsEndpoints"][0]["port"] = 8080  # a port name is a string
    results = validate(PROMETHEUS_OPERATOR, [*monitors.values(), broken], tmp_path)
    assert results[:-1] == [{"ok": True}] * len(monitors), results
    assert not results[-1]["ok"] and "podMetricsEndpoints/0/port must be string" in results[-1]["error"], results


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


def test_the_pod_monitor_selects_every_router_and_replica_pod_of_its_namespace_and_nothing_else(
    stacks: dict[str, dict[str, dict[str, Any]]],
) -> None:
    seen: set[str] = set()
    for stack, resources in stacks.items():
        [monitor] = [m for key, m in _pod_monitors(stacks).items() if key.startswith(f"{stack}/")]
        pods = {
            key: (body["metadata"]["namespace"], body["spec"]["template"]["metadata"]["labels"])
            for key, body in resources["kubernetes_deployment_v1"].items()
        }
        seen |= {labels["app.kubernetes.io/component"] for _, labels in pods.values()}
        for key, (namespace, labels) in pods.items():
            assert namespace in monitor["spec"]["namespaceSelector"]["matchNames"], key
            assert _selects(monitor["spec"]["selector"], labels), key
        other = {**next(iter(pods.values()))[1], "app.kubernetes.io/component": "routing-table"}
        assert not _selects(monitor["spec"]["selector"], other)
        [endpoint] = monitor["spec"]["podMetricsEndpoints"]
        assert (endpoint["port"], endpoint["path"], endpoint["honorLabels"]) == ("http", "/metrics", True)
        assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"application", "model", "version", "role"}
    assert seen == {"replica", "router"}, seen  # the demo's production stack runs routers
