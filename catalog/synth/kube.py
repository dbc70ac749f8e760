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
- Secrets (an environment's ``secrets``): the Vault Agent Injector's pod annotations. The agent
  logs in with the settings' ``vault_role`` and renders each secret (its field, or the whole data as
  JSON; at its pinned version, else the latest) to ``/vault/secrets/NAME``, which the replica finds
  through ``MODELCAT_SECRETS_DIR``: the catalog, the objects and Terraform hold only paths.
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

from catalog.domain.deployment import Endpoint, Environment
from catalog.domain.effective import EffectiveRollout
from catalog.domain.models import SecretRef
from catalog.domain.vault_refs import parse_kv_ref
from catalog.synth.base import Refusal

__all__ = [
    "BINDINGS_PACKAGE",
    "DIGEST_LABEL_HEX",
    "PROVIDER_SOURCE",
    "PROVIDER_VERSION",
    "SECRETS_MOUNT",
    "add_provider",
    "endpoint_annotations",
    "endpoint_labels",
    "label_value",
    "object_name",
    "rollout_annotation",
    "vault_agent_annotations",
    "vault_agent_refusals",
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
SECRETS_MOUNT = "/vault/secrets"  # where the Vault Agent Injector renders secrets in every container
_AGENT = "vault.hashicorp.com"
_TEMPLATE_PREFIX = "agent-inject-template-"  # the longer of the two per-secret annotation names


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


def _agent_template(secret: SecretRef) -> str:
    """The agent's template of one secret: its field's value, or the whole data as JSON (KV v2 keeps
    the data under ``.Data.data``); a pinned version is asked for with ``?version=N``."""
    ref = parse_kv_ref(secret.vault)
    path = f"{ref.mount}/data/{ref.path}" + (f"?version={secret.version}" if secret.version else "")
    value = f"index .Data.data {json.dumps(secret.field)}" if secret.field else ".Data.data | toJSON"
    return f'{{{{- with secret "{path}" -}}}}{{{{ {value} }}}}{{{{- end -}}}}'


def vault_agent_annotations(secrets: tuple[SecretRef, ...], role: str | None) -> dict[str, str]:
    """The Vault Agent Injector's pod annotations for ``secrets`` (none without secrets): inject,
    the role, the agent before the other init containers (the artifact's fetch may need a secret),
    and per secret its KV path and the template selecting its field."""
    if not secrets:
        return {}
    out = {f"{_AGENT}/agent-inject": "true", f"{_AGENT}/agent-init-first": "true", f"{_AGENT}/role": role or ""}
    for secret in secrets:
        ref = parse_kv_ref(secret.vault)
        out[f"{_AGENT}/agent-inject-secret-{secret.name}"] = f"{ref.mount}/data/{ref.path}"
        out[f"{_AGENT}/{_TEMPLATE_PREFIX}{secret.name}"] = _agent_template(secret)
    return out


def vault_agent_refusals(environment: Environment, target: str, role: str | None) -> list[Refusal]:
    """What the Vault Agent Injector cannot deliver of an environment's secrets on ``target``: any
    secret without the block's ``vault_role`` to log in with, and a secret whose name makes an
    annotation name longer than Kubernetes allows (63 characters)."""
    refusals = []
    if environment.secrets and not role:
        refusals.append(
            Refusal(
                f"{target}.vault-role",
                "",
                "",
                ("secrets",),
                f"its secrets reach the pods through the Vault Agent Injector, which needs a role to log in with, "
                f"and the {target}: block names no vault_role",
                f"add vault_role (a Vault Kubernetes-auth role bound to the pods' service account) to its {target}: block",
                environment=environment.name,
            )
        )
    longest = MAX_NAME - len(_TEMPLATE_PREFIX)
    for i, secret in enumerate(environment.secrets):
        if len(secret.name) > longest:
            refusals.append(
                Refusal(
                    f"{target}.secret-name",
                    "",
                    "",
                    ("secrets", i, "name"),
                    f"secret {secret.name!r} names the annotation {_TEMPLATE_PREFIX}{secret.name}, longer than the "
                    f"{MAX_NAME} characters a Kubernetes annotation's name may have",
                    f"give the secret a name of {longest} characters at most",
                    environment=environment.name,
                )
            )
    return refusals


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
