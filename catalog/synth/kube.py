"""Kubernetes conventions shared by the targets that deploy to a cluster (kubernetes, kserve).

- Object names: DNS-1035 labels (what a Service name must be) made of the readable parts and a
  short hash of the exact parts, so ``a-b``/``c`` and ``a``/``b-c``, or versions differing only
  in ``.``/``-``, never share a name.
- Labels (``modelcat/...``): label values are at most 63 characters of ``[A-Za-z0-9._-]``, so a
  version's ``+build`` becomes ``_build`` and the digest is its first 12 hex digits (as
  ``modelcat status`` shows it). The exact version and the full ``sha256:`` digest are
  annotations, where any string fits.
- The rollout block as one annotation (``modelcat/rollout``, compact JSON), for a
  progressive-delivery controller or a human to read.
- The provider block: ``hashicorp/kubernetes`` at the version ``cdktn-provider-kubernetes`` wraps,
  left unconfigured: the provider reads ``KUBE_CONFIG_PATH``/``KUBE_CONFIG_PATHS`` and
  ``KUBE_CTX`` (not ``KUBECONFIG``), or the in-cluster service account when Terraform runs in a pod.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from catalog.domain.deployment import Endpoint
from catalog.domain.effective import EffectiveRollout

__all__ = [
    "BINDINGS_PACKAGE",
    "DIGEST_LABEL_HEX",
    "PROVIDER_SOURCE",
    "PROVIDER_VERSION",
    "add_provider",
    "endpoint_annotations",
    "endpoint_labels",
    "label_value",
    "object_name",
    "rollout_annotation",
]

BINDINGS_PACKAGE = "cdktn_provider_kubernetes"
PROVIDER_SOURCE = "hashicorp/kubernetes"
PROVIDER_VERSION = "3.4.0"  # the provider version cdktn-provider-kubernetes 17.1.0 wraps
DIGEST_LABEL_HEX = 12
_NOT_NAME = re.compile(r"[^a-z0-9]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]")
_EDGE = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
MAX_NAME = 63
_HASH = 6


def object_name(*parts: str) -> str:
    """``checkout-fraud-scorer-1-3-0-1a2b3c``: lowercase letters, digits and '-', starting with a
    letter, at most 63 characters, the same for the same parts and different for different ones."""
    exact = "\0".join(parts)
    suffix = hashlib.sha256(exact.encode()).hexdigest()[:_HASH]
    readable = _NOT_NAME.sub("-", "-".join(parts).lower()).strip("-")
    if not readable[:1].isalpha():
        readable = f"m-{readable}"
    readable = readable[: MAX_NAME - _HASH - 1].rstrip("-")
    return f"{readable}-{suffix}"


def label_value(text: str) -> str:
    """``text`` as a valid label value: '+' and other symbols become '_', at most 63 characters."""
    return _EDGE.sub("", _NOT_LABEL.sub("_", text)[:MAX_NAME])


def endpoint_labels(endpoint: Endpoint, name: str, component: str = "replica") -> dict[str, str]:
    """Labels of every object serving ``endpoint``; ``modelcat/endpoint`` (the object name) selects its pods."""
    return {
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "modelcat",
        "app.kubernetes.io/name": "modelcat",
        "modelcat/application": endpoint.application,
        "modelcat/digest": endpoint.digest.removeprefix("sha256:")[:DIGEST_LABEL_HEX],
        "modelcat/endpoint": name,
        "modelcat/environment": endpoint.environment,
        "modelcat/model": endpoint.model,
        "modelcat/stage": endpoint.stage,
        "modelcat/version": label_value(endpoint.version),
    }


def endpoint_annotations(endpoint: Endpoint) -> dict[str, str]:
    """What labels cannot hold: the exact version, the full digest, the artifact URI."""
    return {
        "modelcat/artifact": endpoint.artifact,
        "modelcat/digest": endpoint.digest,
        "modelcat/version": endpoint.version,
    }


@lru_cache(maxsize=256)
def _rollout_json(rollout: EffectiveRollout) -> str:
    out: dict[str, Any] = {
        "strategy": rollout.strategy,
        "step_percent": rollout.step_percent,
        "steps": list(rollout.steps),
        "interval_seconds": rollout.interval_seconds,
    }
    if rollout.max_error_rate is not None:
        out["max_error_rate"] = rollout.max_error_rate
    if rollout.max_p99_latency_ms is not None:
        out["max_p99_latency_ms"] = rollout.max_p99_latency_ms
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def rollout_annotation(rollouts: EffectiveRollout | Mapping[str, EffectiveRollout]) -> str:
    """The rollout (or ``{model: rollout}``) as compact JSON with sorted keys."""
    if isinstance(rollouts, EffectiveRollout):
        return _rollout_json(rollouts)
    items = (f"{json.dumps(model)}:{_rollout_json(rollouts[model])}" for model in sorted(rollouts))
    return "{" + ",".join(items) + "}"


def add_provider(stack: Any) -> None:
    """The ``kubernetes`` provider block and its ``required_providers`` entry, as the package's
    ``KubernetesProvider`` writes them, through cdktn's generic provider class (which does not
    need the package's jsii assembly in Node)."""
    from cdktn import TerraformProvider, TerraformProviderGeneratorMetadata

    TerraformProvider(
        stack,
        "kubernetes",
        terraform_resource_type="kubernetes",
        terraform_provider_source=PROVIDER_SOURCE,
        terraform_generator_metadata=TerraformProviderGeneratorMetadata(
            provider_name="kubernetes", provider_version=PROVIDER_VERSION
        ),
    )
