"""Read-only views of a catalog: which model versions serve which application, how good, how old."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from catalog.domain.effective import effective_gates, semver_key
from catalog.domain.live_metrics import LiveMetric
from catalog.domain.models import Catalog, Version

__all__ = ["ApplicationView", "BindingView", "RouteView", "application_views"]

KEY_METRICS = 3


@dataclass(frozen=True, slots=True)
class RouteView:
    version: str
    weight: int
    stage: str
    digest: str
    age_days: int
    metrics: dict[str, float]
    over_age_gate: bool = False  # served (weight > 0, binding enabled) and older than max_age_days
    # per label outcome, the live metric of its recorded predictions (filled in from the stack's logs)
    live_metrics: dict[str, LiveMetric] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BindingView:
    model: str
    enabled: bool
    sticky_key: str | None
    routes: list[RouteView]
    max_age_days: int | None = None  # the effective gate: the binding's over defaults.gates


@dataclass(frozen=True, slots=True)
class ApplicationView:
    name: str
    environment: str
    owner: str
    bindings: list[BindingView]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _key_metrics(version: Version, preferred: list[str]) -> dict[str, float]:
    names = [n for n in preferred if n in version.metrics]
    names += sorted(n for n in version.metrics if n not in names)
    return {n: version.metrics[n] for n in names[:KEY_METRICS]}


def application_views(catalog: Catalog, now: datetime) -> list[ApplicationView]:
    """Per application, per bound model, each routed version with its weight, stage, metrics and age.

    Metrics named by the binding's gates (or the default gates) come first; a served version older
    than the binding's effective ``max_age_days`` gate is marked ``over_age_gate``.
    """
    versions = {(m.name, semver_key(v.version)): v for m in catalog.models for v in m.versions}
    views = []
    for app in catalog.applications:
        bindings = []
        for binding in app.bindings:
            gates = binding.gates or catalog.defaults.gates
            preferred = list(gates.min_metrics) if gates else []
            max_age = effective_gates(catalog, binding).max_age_days
            routes = []
            for route in binding.routes:
                version = versions[(binding.model, semver_key(route.version))]
                age = (now - version.trained_at).days
                routes.append(
                    RouteView(
                        version=version.version,
                        weight=route.weight,
                        stage=version.stage,
                        digest=version.artifact.digest,
                        age_days=age,
                        metrics=_key_metrics(version, preferred),
                        over_age_gate=binding.enabled and route.weight > 0 and max_age is not None and age > max_age,
                    )
                )
            bindings.append(BindingView(binding.model, binding.enabled, binding.sticky_key, routes, max_age))
        views.append(ApplicationView(app.name, app.environment, app.owner, bindings))
    return views
