"""The ``kubernetes`` target, per namespace: a Prometheus Operator ``PodMonitor`` for the routers and
replicas, so a cluster's Prometheus scrapes the series the local stack's Prometheus scrapes.

It selects the pods modelcat manages in the environment (``app.kubernetes.io/managed-by:
modelcat``, component ``replica`` or ``router``) and scrapes their ``http`` port's ``/metrics``.
Like the local scrape targets (``catalog.telemetry.prometheus``) each target gets ``application``,
``model``, ``version`` (the exact version, from the pod's annotation) and ``role`` from the pod,
and ``honorLabels`` keeps a series' own ``model``/``version`` (a router's series carry them), so the
queries of ``catalog.telemetry.promql`` run unchanged. It needs the Prometheus Operator's CRDs in
the cluster (``monitoring.coreos.com/v1``), as the HTTPRoute needs the Gateway API's.
"""

from __future__ import annotations

from typing import Any

from catalog.domain.deployment import resource_id
from catalog.domain.models import KubernetesSettings
from catalog.synth.base import StackContext
from catalog.synth.typed import ResourceKind, build_bodies

__all__ = ["MONITORING_API", "POD_MONITOR_ID", "SCRAPE_INTERVAL", "monitoring_resources", "pod_monitor"]

MONITORING_API = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "15s"
POD_MONITOR_ID = resource_id("modelcat", "pod-monitor")
MANIFEST = "kubernetes_manifest"

# (pod label or annotation, as Prometheus's kubernetes_sd names it) -> target label
_TARGET_LABELS = (
    ("__meta_kubernetes_pod_label_modelcat_application", "application"),
    ("__meta_kubernetes_pod_label_modelcat_model", "model"),
    ("__meta_kubernetes_pod_annotation_modelcat_version", "version"),
    ("__meta_kubernetes_pod_label_app_kubernetes_io_component", "role"),
)


def pod_monitor(k: Any, settings_and_env: tuple[KubernetesSettings, str]) -> Any:
    settings, environment = settings_and_env
    relabelings = [
        {"sourceLabels": [source], "targetLabel": target, "action": "replace", "regex": "(.+)"}
        for source, target in _TARGET_LABELS
    ]
    manifest = {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": {
            "name": "modelcat",
            "namespace": settings.namespace,
            "labels": {
                "app.kubernetes.io/component": "monitoring",
                "app.kubernetes.io/managed-by": "modelcat",
                "app.kubernetes.io/name": "modelcat",
                "modelcat/environment": environment,
            },
        },
        "spec": {
            "selector": {
                "matchLabels": {"app.kubernetes.io/managed-by": "modelcat", "modelcat/environment": environment},
                "matchExpressions": [
                    {"key": "app.kubernetes.io/component", "operator": "In", "values": ["replica", "router"]}
                ],
            },
            "namespaceSelector": {"matchNames": [settings.namespace]},
            "podMetricsEndpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": SCRAPE_INTERVAL,
                    "honorLabels": True,
                    "relabelings": relabelings,
                }
            ],
        },
    }
    return k.ManifestConfig(manifest=manifest)


def monitoring_resources(context: StackContext, serving: bool, modules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stack's PodMonitor (``{resource type: {id: body}}``), when anything is ``serving``."""
    settings = context.environment.kubernetes
    if settings is None or not serving:
        return {}
    kind = ResourceKind(MANIFEST, (modules["manifest"],), pod_monitor)
    return {MANIFEST: build_bodies(kind, [(POD_MONITOR_ID, (settings, context.environment.name))])}
