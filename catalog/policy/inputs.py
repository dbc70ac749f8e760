"""The Rego inputs: one small document per catalog subject, with facts precomputed in Python.

Rego is slow at joins, sets and indexes over large documents (see docs CHECKED.md), so every join
(route -> version, version -> base revision) and every derived fact (age in days, effective
serving and rollout, the effective size limit, whether a route's version is newer by semver than
every version whose share falls, the share one planned step takes it to, the keys the application's
environment trusts) is computed here, and each rule sees one subject:
a model, a version, an application or a binding. Inputs never hold null (regopy compares null
as greater than any number): absent facts are absent keys. Metrics and gates come with their text
as messages print it (``metrics_text``, ``min_metrics_text``: four decimals), since no sprintf verb
prints a number alike under both engines (OPA prints ``%.4f`` of 1.0 as ``%!f(int64=0001)`` and of
1e-05 as ``%!f(string=1e-0)``; regopy prints ``%v`` of 0.8211 as 0.8211000000000001). Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from catalog.domain.diff import version_order
from catalog.domain.effective import (
    EffectiveRollout,
    effective_gates,
    effective_rollout,
    effective_serving,
    semver_key,
)
from catalog.domain.models import Binding, Catalog, Model, Version
from catalog.domain.trust import environment_keys
from catalog.policy.findings import SubjectInput
from catalog.policy.settings import Settings

__all__ = ["BaseVersion", "base_versions", "base_versions_of", "catalog_inputs"]


@dataclass(frozen=True, slots=True)
class BaseVersion:
    """What the base revision said about one version."""

    model: str
    version: str
    stage: str
    digest: str
    served_by: tuple[str, ...]  # applications that routed traffic (weight > 0, enabled) to it
    weights: tuple[tuple[str, int], ...] = ()  # (application, weight) of those routes


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def base_versions(document: object) -> dict[tuple[str, str], BaseVersion]:
    """Versions of the base revision's catalog, read leniently from its raw YAML data.

    Only names, stages, digests and routes are needed, so a base that no longer passes today's
    schema still gives its history.
    """
    if not isinstance(document, Mapping):
        return {}
    served: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for app in _list(document.get("applications")):
        if not isinstance(app, Mapping):
            continue
        for binding in _list(app.get("bindings")):
            if not isinstance(binding, Mapping) or binding.get("enabled", True) is False:
                continue
            for route in _list(binding.get("routes")):
                if not isinstance(route, Mapping):
                    continue
                weight = route.get("weight")
                if isinstance(weight, int) and weight > 0 and isinstance(route.get("version"), str):
                    key = (str(binding.get("model")), semver_key(route["version"]))
                    served.setdefault(key, []).append((str(app.get("name")), weight))
    found: dict[tuple[str, str], BaseVersion] = {}
    for model in _list(document.get("models")):
        if not isinstance(model, Mapping) or not isinstance(model.get("name"), str):
            continue
        for version in _list(model.get("versions")):
            if not isinstance(version, Mapping) or not isinstance(version.get("version"), str):
                continue
            artifact = version.get("artifact")
            digest = artifact.get("digest") if isinstance(artifact, Mapping) else None
            stage = version.get("stage", "candidate")
            key = (model["name"], semver_key(version["version"]))
            found[key] = _base_version(
                model["name"],
                version["version"],
                stage if isinstance(stage, str) else "candidate",
                digest if isinstance(digest, str) else "",
                served.get(key, []),
            )
    return found


def base_versions_of(catalog: Catalog | None) -> dict[tuple[str, str], BaseVersion]:
    """``base_versions`` of a typed (valid) catalog; None is an empty base."""
    if catalog is None:
        return {}
    served: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for app in catalog.applications:
        for binding in app.bindings:
            if binding.enabled:
                for route in binding.routes:
                    if route.weight > 0:
                        key = (binding.model, semver_key(route.version))
                        served.setdefault(key, []).append((app.name, route.weight))
    found: dict[tuple[str, str], BaseVersion] = {}
    for m in catalog.models:
        for v in m.versions:
            key = (m.name, semver_key(v.version))
            found[key] = _base_version(m.name, v.version, v.stage, v.artifact.digest, served.get(key, []))
    return found


def _base_version(model: str, version: str, stage: str, digest: str, routes: list[tuple[str, int]]) -> BaseVersion:
    """``routes``: (application, weight) of the enabled routes with traffic to the version."""
    return BaseVersion(model, version, stage, digest, tuple(dict.fromkeys(app for app, _ in routes)), tuple(routes))


def _age_days(version: Version, now: datetime) -> int:
    return (now - version.trained_at).days


def _metrics(values: Mapping[str, float]) -> dict[str, float]:
    return {name: float(value) for name, value in values.items()}


def _metrics_text(values: Mapping[str, float]) -> dict[str, str]:
    return {name: f"{float(value):.4f}" for name, value in values.items()}


def _base_facts(base: Mapping[tuple[str, str], BaseVersion] | None, key: tuple[str, str]) -> dict[str, object]:
    if base is None:
        return {"known": False}
    old = base.get(key)
    if old is None:
        return {"known": True, "present": False, "served": False}
    return {
        "known": True,
        "present": True,
        "stage": old.stage,
        "digest": old.digest,
        "served": bool(old.served_by),
        "served_by": ", ".join(old.served_by),  # text: regopy's sprintf quotes concat()'s result
    }


def _version_input(
    catalog: Catalog,
    model: Model,
    version: Version,
    now: datetime,
    base: Mapping[tuple[str, str], BaseVersion] | None,
    observed: Mapping[str, object],
) -> dict[str, object]:
    limits: dict[str, object] = {"max_artifact_bytes": catalog.limits.max_artifact_bytes}
    if catalog.limits.min_artifact_bytes is not None:
        limits["min_artifact_bytes"] = catalog.limits.min_artifact_bytes
    model_doc: dict[str, object] = {"name": model.name, "owner": model.owner, "present": True}
    if model.max_artifact_bytes is not None:
        model_doc["max_artifact_bytes"] = model.max_artifact_bytes
    return {
        "kind": "version",
        "model": model_doc,
        "version": {
            "version": version.version,
            "present": True,
            "stage": version.stage,
            "digest": version.artifact.digest,
            "uri": version.artifact.uri,
            "size_bytes": version.artifact.size_bytes,
            "age_days": _age_days(version, now),
            "metrics": _metrics(version.metrics),
        },
        "limits": limits,
        "artifact": dict(observed),
        "base": _base_facts(base, (model.name, semver_key(version.version))),
    }


def _by_model(base: Mapping[tuple[str, str], BaseVersion]) -> dict[str, list[tuple[str, BaseVersion]]]:
    """The base's versions per model (semver key, facts), in the base's order."""
    index: dict[str, list[tuple[str, BaseVersion]]] = {}
    for (model, key), old in base.items():
        index.setdefault(model, []).append((key, old))
    return index


def _base_routes(
    base_by_model: Mapping[str, list[tuple[str, BaseVersion]]], application: str, binding: Binding
) -> tuple[bool, dict[str, int]]:
    """(whether the application routed traffic to this model on the base, version -> base weight)."""
    weights: dict[str, int] = {}
    for key, old in base_by_model.get(binding.model, ()):
        for app, weight in old.weights:
            if app == application:
                weights[key] = weights.get(key, 0) + weight
    return bool(weights), weights


def _newer_than_falling(binding: Binding, base_weights: Mapping[str, int]) -> dict[str, bool]:
    """Per version of the binding's routes: whether it is newer (semver) than every version whose
    share falls from the base (true when none falls), that is, a rollout's candidate rather than a
    version traffic goes back to. A version that leaves the routes falls to 0."""
    weights: dict[str, int] = {}
    for route in binding.routes:
        key = semver_key(route.version)
        weights[key] = weights.get(key, 0) + route.weight
    falling = [version_order(key) for key, weight in base_weights.items() if weights.get(key, 0) < weight]
    return {key: all(version_order(key) > old for old in falling) for key in weights}


def _largest_step(rollout: EffectiveRollout) -> int:
    """The most traffic one step exposes the new version to: step_percent, or with a steps list the
    largest rise to a step below 100 (the first one from 0). The last rise, to 100, is "the rest",
    as a canary's step_percent does not count it: ``steps: [10, 100]`` is ``step_percent: 10``."""
    if not rollout.explicit_steps:
        return rollout.step_percent
    rises = [after - before for before, after in pairwise((0, *rollout.explicit_steps)) if after < 100]
    return max(rises, default=100)


def _trust(catalog: Catalog, environment: str) -> dict[str, object]:
    """What the trust policy says of the environment: whether it serves only signed versions, the keys
    it trusts with their min_version, and their names as messages print them."""
    trusted = environment_keys(catalog, environment)
    return {
        "required": trusted.required,
        "keys": [{"name": key.name, "min_version": key.min_version} for key in trusted.keys],
        "keys_text": ", ".join(key.name for key in trusted.keys) or "none",
    }


def _binding_input(
    catalog: Catalog,
    app_doc: dict[str, object],
    binding: Binding,
    versions: Mapping[tuple[str, str], Version],
    now: datetime,
    base: Mapping[tuple[str, str], BaseVersion] | None = None,
    base_by_model: Mapping[str, list[tuple[str, BaseVersion]]] | None = None,
) -> dict[str, object]:
    serving = effective_serving(catalog, binding)
    rollout = effective_rollout(catalog, binding)
    effective = effective_gates(catalog, binding)
    gates: dict[str, object] = {}
    if effective.max_age_days is not None:
        gates["max_age_days"] = effective.max_age_days
    gates["min_metrics"] = _metrics(effective.min_metrics)
    gates["min_metrics_text"] = _metrics_text(effective.min_metrics)
    routed_on_base = False
    base_weights: dict[str, int] = {}
    if base:
        index = base_by_model if base_by_model is not None else _by_model(base)
        routed_on_base, base_weights = _base_routes(index, str(app_doc["name"]), binding)
    newer = _newer_than_falling(binding, base_weights)
    mirrored = semver_key(binding.mirror.version) if binding.mirror is not None else None
    routes = []
    for route in binding.routes:
        version = versions.get((binding.model, semver_key(route.version)))
        entry: dict[str, object] = {
            "version": route.version,
            "weight": route.weight,
            "known": version is not None,
            "mirrored": semver_key(route.version) == mirrored,  # a copy of requests reaches it
        }
        if base is not None:
            base_weight = base_weights.get(semver_key(route.version), 0)
            entry["base_weight"] = base_weight
            entry["next_step"] = rollout.next_step(base_weight)  # the most it may have after one step
            entry["newer_than_falling"] = newer[semver_key(route.version)]
        if version is not None:
            entry |= {
                "stage": version.stage,
                "age_days": _age_days(version, now),
                "metrics": _metrics(version.metrics),
                "metrics_text": _metrics_text(version.metrics),
                "digest": version.artifact.digest,
                "signed": version.artifact.bundle is not None,
            }
            if version.artifact.bundle is not None:
                entry["bundle"] = {
                    "key": version.artifact.bundle.key,
                    "key_version": version.artifact.bundle.key_version,
                }
        routes.append(entry)
    rollout_doc: dict[str, object] = {
        "strategy": rollout.strategy,
        "step_percent": rollout.step_percent,
        "interval_seconds": rollout.interval_seconds,
        "steps": list(rollout.steps),
        "explicit_steps": bool(rollout.explicit_steps),
        "largest_step": _largest_step(rollout),
        "guarded": rollout.guarded,
    }
    return {
        "kind": "binding",
        "application": app_doc,
        "binding": {"model": binding.model, "enabled": binding.enabled},
        "serving": {
            "replicas": serving.replicas,
            "min_replicas": serving.min_replicas,
            "max_replicas": serving.max_replicas,
        },
        "rollout": rollout_doc,
        "gates": gates,
        "trust": _trust(catalog, str(app_doc["environment"])),
        "routes": routes,
        "base": {"known": base is not None, "routed": routed_on_base},
    }


def catalog_inputs(
    catalog: Catalog,
    *,
    now: datetime,
    settings: Settings,
    base: Mapping[tuple[str, str], BaseVersion] | None = None,
    observe: Callable[[Model, Version], Mapping[str, object]] | None = None,
    models: Collection[str] | None = None,
) -> list[SubjectInput]:
    """One input per model, version, application and binding, plus one per version the base
    revision had and the head no longer has (so a deleted released version can be judged).

    ``base`` is None when there is no base revision (the rules that need one are skipped);
    ``observe`` gives artifact facts found outside the catalog (e.g. the stored file's size);
    ``models`` limits the model and version inputs to those models (None: all).
    """
    inputs: list[SubjectInput] = []
    versions: dict[tuple[str, str], Version] = {}
    head_keys: set[tuple[str, str]] = set()
    model_index: dict[str, int] = {}
    for i, model in enumerate(catalog.models):
        if model is None:
            continue
        model_index.setdefault(model.name, i)
        wanted = models is None or model.name in models
        if not wanted:  # still indexed: bindings read their routed versions' facts
            for version in model.versions:
                key = (model.name, semver_key(version.version))
                versions[key] = version
                head_keys.add(key)
            continue
        inputs.append(
            SubjectInput(
                "model",
                f"model/{model.name}",
                {"kind": "model", "model": {"name": model.name, "owner": model.owner}},
                ("models", i),
            )
        )
        for j, version in enumerate(model.versions):
            key = (model.name, semver_key(version.version))
            versions[key] = version
            head_keys.add(key)
            observed = observe(model, version) if observe is not None else {}
            inputs.append(
                SubjectInput(
                    "version",
                    f"version/{model.name}@{version.version}",
                    _version_input(catalog, model, version, now, base, observed),
                    ("models", i, "versions", j),
                )
            )
    for key, old in (base or {}).items():
        if key in head_keys:
            continue
        document: dict[str, object] = {
            "kind": "version",
            "model": {"name": old.model, "present": old.model in model_index},
            "version": {"version": old.version, "present": False},
            "base": _base_facts(base, key),
        }
        loc = ("models", model_index[old.model]) if old.model in model_index else ("models",)
        inputs.append(SubjectInput("version", f"version/{old.model}@{old.version}", document, loc))
    production = set(settings.production_environments)
    base_by_model = _by_model(base) if base else {}
    for a, app in enumerate(catalog.applications):
        if app is None:
            continue
        app_doc: dict[str, object] = {
            "name": app.name,
            "owner": app.owner,
            "environment": app.environment,
            "production": app.environment in production,
        }
        inputs.append(
            SubjectInput(
                "application",
                f"application/{app.name}",
                {"kind": "application", "application": app_doc},
                ("applications", a),
            )
        )
        for b, binding in enumerate(app.bindings):
            if binding is None:
                continue
            inputs.append(
                SubjectInput(
                    "binding",
                    f"binding/{app.name}/{binding.model}",
                    _binding_input(catalog, app_doc, binding, versions, now, base, base_by_model),
                    ("applications", a, "bindings", b),
                )
            )
    for item in inputs:
        item.document["subject"] = item.subject
    return inputs
