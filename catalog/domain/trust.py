"""The trust policy, read: which keys an environment trusts and whether it serves only signed versions.
Pure: no IO (the keys themselves are read by ``catalog.signing.trust``)."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.domain.models import Catalog, TrustedKey

__all__ = ["EnvironmentKeys", "environment_keys"]


@dataclass(frozen=True)
class EnvironmentKeys:
    """``keys``: the trust keys that may sign for the environment; ``required``: whether its replicas
    serve only signed versions."""

    required: bool
    keys: tuple[TrustedKey, ...]


def environment_keys(catalog: Catalog, environment: str | None) -> EnvironmentKeys:
    """What the trust policy says of ``environment``. One it does not name (or None: any environment)
    requires nothing, and any key of the policy counts for it."""
    trust = catalog.trust
    if trust is None:
        return EnvironmentKeys(False, ())
    rule = next((e for e in trust.environments if e.environment == environment), None)
    if rule is None:
        return EnvironmentKeys(False, tuple(trust.keys))
    return EnvironmentKeys(rule.require_signatures, tuple(k for k in trust.keys if k.name in rule.keys))
