"""What changed between two catalogs, in model terms. Pure: two ``Catalog`` values in, a typed
``CatalogDiff`` out; no IO, no printing.

Identity: a model by name, a version by its semantic version without build metadata
(``semver_key``), an application by name, a binding by its model within the application, an
environment by name. Serving, rollout and gates are compared as they take effect (the binding's
block over ``defaults``), so a change of ``defaults`` shows on every binding it reaches, and is
also listed once under ``settings``.

A model removed and another added whose versions are the same, pair for pair (the same set of
``(version, digest)``), is reported as a rename, not as a removal and an addition: bytes that
stay identical under a new name are the same model. Only a one-to-one match counts; two removed
models with the same versions and digests (or two added ones) stay removals and additions. The
renamed model's versions and bindings are then compared across the two names.

A version "served traffic" on a side when an enabled binding of an application routes a weight
above 0 to it there. A digest changed on a version that served traffic on the base is the
change a reviewer must not miss (``VersionChange.served_digest_swap``).

Every list is in a fixed order: names sorted, versions by semantic version, fields in the
models' declaration order with map keys sorted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, computed_field

from catalog.domain.effective import declared_environments, effective_rollout, effective_serving, semver_key
from catalog.domain.models import Application, Binding, Catalog, EnvironmentSpec, Model, Signature, Version
from catalog.domain.strict import STRICT

__all__ = [
    "ApplicationChange",
    "BindingChange",
    "CatalogDiff",
    "EnvironmentChange",
    "FieldChange",
    "ModelChange",
    "ModelRename",
    "RouteChange",
    "RouteWeight",
    "Status",
    "Traffic",
    "VersionChange",
    "VersionRef",
    "diff_catalogs",
    "version_order",
]

Scalar = str | int | float | bool | None
Value = Scalar | list[Scalar]
Status = Literal["added", "removed", "changed"]


class Strict(BaseModel):
    model_config = STRICT


class FieldChange(Strict):
    """One value that differs: ``field`` is a dotted path (``artifact.digest``, ``metrics.auc``,
    ``serving.replicas``, ``kubernetes.namespace``); None stands for absent."""

    field: str
    before: Value = None
    after: Value = None


class Traffic(Strict):
    """An application routing ``weight`` percent of a binding's traffic to a version."""

    application: str
    weight: int


class VersionRef(Strict):
    """A version added or removed. ``traffic``: who routes to it on the side where it exists."""

    model: str
    version: str
    digest: str
    size_bytes: int
    stage: str
    traffic: list[Traffic] = []


class VersionChange(Strict):
    """A version on both sides whose facts differ. ``served_on_base``: who sent it traffic on the base."""

    model: str
    version: str
    changes: list[FieldChange]
    served_on_base: list[Traffic] = []

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorated property: pydantic's way
    @property
    def digest_changed(self) -> bool:
        return any(c.field == "artifact.digest" for c in self.changes)

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorated property: pydantic's way
    @property
    def served_digest_swap(self) -> bool:
        """Other bytes under a version number that served traffic: a released version rewritten."""
        return self.digest_changed and bool(self.served_on_base)


class ModelRename(Strict):
    before: str
    after: str
    versions: list[str]  # the versions both names hold, with the same digests


class ModelChange(Strict):
    """A model on both sides (or renamed) whose own fields differ (owner, task, labels, ...)."""

    name: str
    changes: list[FieldChange]


class RouteWeight(Strict):
    version: str
    weight: int


class RouteChange(Strict):
    """A version's weight in a binding; None: not routed on that side."""

    version: str
    before: int | None
    after: int | None


class BindingChange(Strict):
    """A binding of an application, by model (the head's name when the model was renamed)."""

    model: str
    status: Status
    routes_before: list[RouteWeight] = []
    routes_after: list[RouteWeight] = []
    weights: list[RouteChange] = []  # the versions whose weight differs, in version order
    changes: list[FieldChange] = []  # model, enabled, sticky_key, serving.*, rollout.*, gates.*, analysis.*


class ApplicationChange(Strict):
    name: str
    status: Status
    environment: str  # the head's (the base's when removed)
    changes: list[FieldChange] = []  # owner, environment, description, outcomes.<name> (its kind)
    bindings: list[BindingChange] = []


class EnvironmentChange(Strict):
    name: str
    status: Status
    target: str  # the head's (the base's when removed)
    changes: list[FieldChange] = []  # target, kubernetes.*, kserve.*, sagemaker.*


class CatalogDiff(Strict):
    models_added: list[str] = []
    models_removed: list[str] = []
    renames: list[ModelRename] = []
    models_changed: list[ModelChange] = []
    versions_added: list[VersionRef] = []  # including every version of an added model
    versions_removed: list[VersionRef] = []  # including every version of a removed model
    versions_changed: list[VersionChange] = []
    applications: list[ApplicationChange] = []
    environments: list[EnvironmentChange] = []
    settings: list[FieldChange] = []  # defaults.* and limits.*

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorated property: pydantic's way
    @property
    def empty(self) -> bool:
        return not any(
            (
                self.models_added,
                self.models_removed,
                self.renames,
                self.models_changed,
                self.versions_added,
                self.versions_removed,
                self.versions_changed,
                self.applications,
                self.environments,
                self.settings,
            )
        )

    @property
    def served_digest_swaps(self) -> list[VersionChange]:
        return [v for v in self.versions_changed if v.served_digest_swap]

    def touched_versions(self) -> frozenset[tuple[str, str]]:
        """(model, version) of the head's versions whose artifact the change must verify: those
        added, and those whose artifact (URI, digest, size) or signature differs from the base's."""
        touched = {(v.model, v.version) for v in self.versions_added}
        touched |= {
            (v.model, v.version)
            for v in self.versions_changed
            if any(c.field.startswith(("artifact.", "signature")) for c in v.changes)
        }
        return frozenset(touched)


def version_order(version: str) -> tuple[tuple[int, int | str], ...]:
    """Semantic-version precedence as a sort key (numbers numerically, a pre-release before its release)."""
    core, _, pre = semver_key(version).partition("-")
    numbers = tuple((0, int(part)) if part.isdigit() else (1, part) for part in core.split("."))
    tail: tuple[tuple[int, int | str], ...] = ((2, ""),)  # a release sorts after its pre-releases
    if pre:
        tail = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (*numbers, *tail)


# -- flattening values into dotted paths ------------------------------------------------------


def _signature_text(signature: Signature) -> str:
    def tensors(specs: Iterable[Any]) -> str:
        return ", ".join(f"{t.name} {t.dtype}[{','.join(str(d) for d in t.shape)}]" for t in specs)

    return f"{tensors(signature.inputs)} -> {tensors(signature.outputs)}"


def _flatten(value: Any, prefix: str = "") -> dict[str, Value]:
    """``{dotted path: value}`` of a JSON-like value: maps by sorted key, lists of scalars kept whole."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, Mapping):
        out: dict[str, Value] = {}
        for key in sorted(value) if _is_free_map(prefix) else value:
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and any(isinstance(item, Mapping | list | BaseModel) for item in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}.{i}"))
        return out
    return {prefix: value}


_FREE_MAPS = ("metrics", "labels", "min_metrics")  # user-keyed maps: their keys sorted


def _is_free_map(prefix: str) -> bool:
    return prefix.rsplit(".", 1)[-1] in _FREE_MAPS


def _merged(before: Iterable[str], after: Iterable[str]) -> list[str]:
    """Both key orders in one: a key only in ``after`` goes right after the key before it there."""
    merged = list(before)
    known = set(merged)
    previous: str | None = None
    for key in after:
        if key not in known:
            merged.insert(merged.index(previous) + 1 if previous is not None else 0, key)
            known.add(key)
        previous = key
    return merged


def _changes(before: Mapping[str, Value], after: Mapping[str, Value]) -> list[FieldChange]:
    fields = _merged(before, after)
    return [
        FieldChange(field=f, before=before.get(f), after=after.get(f)) for f in fields if before.get(f) != after.get(f)
    ]


def _version_facts(version: Version) -> dict[str, Value]:
    facts = _flatten(version.model_dump(mode="json", exclude={"version", "signature"}))
    facts["signature"] = _signature_text(version.signature)
    return facts


def _model_facts(model: Model) -> dict[str, Value]:
    return _flatten(model.model_dump(mode="json", exclude={"name", "versions"}))


# -- traffic ----------------------------------------------------------------------------------

_Served = dict[tuple[str, str], list[Traffic]]


def _served(catalog: Catalog | None) -> _Served:
    """(model, version key) -> the applications routing a weight above 0 to it."""
    served: _Served = {}
    for app in sorted(catalog.applications if catalog else [], key=lambda a: a.name):
        for binding in app.bindings:
            if not binding.enabled:
                continue
            for route in binding.routes:
                if route.weight > 0:
                    key = (binding.model, semver_key(route.version))
                    served.setdefault(key, []).append(Traffic(application=app.name, weight=route.weight))
    return served


# -- models and versions ----------------------------------------------------------------------


def _models(catalog: Catalog | None) -> dict[str, Model]:
    return {m.name: m for m in (catalog.models if catalog else [])}


def _fingerprint(model: Model) -> frozenset[tuple[str, str]]:
    return frozenset((semver_key(v.version), v.artifact.digest) for v in model.versions)


def _renames(removed: Iterable[Model], added: Iterable[Model]) -> dict[str, str]:
    """Removed name -> added name, for the one-to-one matches of identical (version, digest) sets."""
    by_print: dict[frozenset[tuple[str, str]], tuple[list[str], list[str]]] = {}
    for model in removed:
        by_print.setdefault(_fingerprint(model), ([], []))[0].append(model.name)
    for model in added:
        by_print.setdefault(_fingerprint(model), ([], []))[1].append(model.name)
    return {olds[0]: news[0] for olds, news in by_print.values() if len(olds) == 1 and len(news) == 1}


def _ref(model: str, version: Version, traffic: list[Traffic]) -> VersionRef:
    a = version.artifact
    return VersionRef(
        model=model,
        version=version.version,
        digest=a.digest,
        size_bytes=a.size_bytes,
        stage=version.stage,
        traffic=traffic,
    )


def _sorted_versions(versions: Iterable[Version]) -> list[Version]:
    return sorted(versions, key=lambda v: version_order(v.version))


class _Builder:
    """Collects one diff; each method handles one part of the catalog."""

    def __init__(self, base: Catalog | None, head: Catalog | None) -> None:
        self.base, self.head = base, head
        self.served_base, self.served_head = _served(base), _served(head)
        self.diff: dict[str, list[Any]] = {}

    def add(self, key: str, item: Any) -> None:
        self.diff.setdefault(key, []).append(item)

    def models(self) -> dict[str, str]:
        """Compare models and versions; returns the renames (base name -> head name)."""
        old, new = _models(self.base), _models(self.head)
        renames = _renames(
            (old[n] for n in sorted(old.keys() - new.keys())), (new[n] for n in sorted(new.keys() - old.keys()))
        )
        pairs = {name: name for name in old.keys() & new.keys()} | renames
        for name in sorted(old.keys() - new.keys() - renames.keys()):
            self.add("models_removed", name)
            for v in _sorted_versions(old[name].versions):
                self.add("versions_removed", _ref(name, v, self.served_base.get((name, semver_key(v.version)), [])))
        for name in sorted(new.keys() - old.keys() - set(renames.values())):
            self.add("models_added", name)
            for v in _sorted_versions(new[name].versions):
                self.add("versions_added", _ref(name, v, self.served_head.get((name, semver_key(v.version)), [])))
        for before, after in sorted(pairs.items(), key=lambda p: p[1]):
            if before != after:
                versions = [v.version for v in _sorted_versions(new[after].versions)]
                self.add("renames", ModelRename(before=before, after=after, versions=versions))
            self.model(old[before], new[after])
        return renames

    def model(self, old: Model, new: Model) -> None:
        if old is new:  # one object on both sides (a base parsed reusing the head's models): no change
            return
        changes = _changes(_model_facts(old), _model_facts(new))
        if changes:
            self.add("models_changed", ModelChange(name=new.name, changes=changes))
        before = {semver_key(v.version): v for v in old.versions}
        after = {semver_key(v.version): v for v in new.versions}
        for key in sorted(before.keys() | after.keys(), key=version_order):
            if key not in after:
                self.add("versions_removed", _ref(new.name, before[key], self.served_base.get((old.name, key), [])))
            elif key not in before:
                self.add("versions_added", _ref(new.name, after[key], self.served_head.get((new.name, key), [])))
            else:
                changes = _changes(_version_facts(before[key]), _version_facts(after[key]))
                if changes:
                    served = self.served_base.get((old.name, key), [])
                    change = VersionChange(
                        model=new.name, version=after[key].version, changes=changes, served_on_base=served
                    )
                    self.add("versions_changed", change)

    def applications(self, renames: Mapping[str, str]) -> None:
        old = {a.name: a for a in (self.base.applications if self.base else [])}
        new = {a.name: a for a in (self.head.applications if self.head else [])}
        for name in sorted(old.keys() | new.keys()):
            if name not in new:
                bindings = [self.binding("removed", b.model, b, None) for b in _by_model(old[name])]
                self.add(
                    "applications",
                    ApplicationChange(
                        name=name, status="removed", environment=old[name].environment, bindings=bindings
                    ),
                )
            elif name not in old:
                bindings = [self.binding("added", b.model, None, b) for b in _by_model(new[name])]
                self.add(
                    "applications",
                    ApplicationChange(name=name, status="added", environment=new[name].environment, bindings=bindings),
                )
            else:
                change = self.application(old[name], new[name], renames)
                if change is not None:
                    self.add("applications", change)

    def application(self, old: Application, new: Application, renames: Mapping[str, str]) -> ApplicationChange | None:
        facts: Callable[[Application], dict[str, Value]] = lambda a: (
            _flatten(a.model_dump(mode="json", include={"owner", "environment", "description"}))
            | {f"outcomes.{o.name}": o.kind for o in a.outcomes}
        )
        changes = _changes(facts(old), facts(new))
        before = {renames.get(b.model, b.model): b for b in old.bindings}
        after = {b.model: b for b in new.bindings}
        bindings = []
        for model in sorted(before.keys() | after.keys()):
            status: Status = "removed" if model not in after else "added" if model not in before else "changed"
            change = self.binding(status, model, before.get(model), after.get(model))
            if status != "changed" or change.changes or change.weights:
                bindings.append(change)
        if not changes and not bindings:
            return None
        return ApplicationChange(
            name=new.name, status="changed", environment=new.environment, changes=changes, bindings=bindings
        )

    def binding(self, status: Status, model: str, old: Binding | None, new: Binding | None) -> BindingChange:
        routes_before = _routes(old)
        routes_after = _routes(new)
        weights: list[RouteChange] = []
        changes: list[FieldChange] = []
        if old is not None and new is not None:
            was = {semver_key(r.version): r for r in routes_before}
            now = {semver_key(r.version): r for r in routes_after}
            for key in sorted(was.keys() | now.keys(), key=version_order):
                w0, w1 = (was[key].weight if key in was else None), (now[key].weight if key in now else None)
                if w0 != w1:
                    weights.append(RouteChange(version=(now.get(key) or was[key]).version, before=w0, after=w1))
            assert self.base is not None and self.head is not None  # a binding on both sides
            changes = _changes(_binding_facts(self.base, old), _binding_facts(self.head, new))
        return BindingChange(
            model=model,
            status=status,
            routes_before=routes_before,
            routes_after=routes_after,
            weights=weights,
            changes=changes,
        )

    def environments(self) -> None:
        old = {e.name: e for e in (declared_environments(self.base) if self.base else [])}
        new = {e.name: e for e in (declared_environments(self.head) if self.head else [])}
        for name in sorted(old.keys() | new.keys()):
            if name not in new:
                self.add("environments", EnvironmentChange(name=name, status="removed", target=old[name].target))
            elif name not in old:
                self.add("environments", EnvironmentChange(name=name, status="added", target=new[name].target))
            else:
                facts: Callable[[EnvironmentSpec], dict[str, Value]] = lambda e: _flatten(
                    e.model_dump(mode="json", exclude={"name"})
                )
                changes = _changes(facts(old[name]), facts(new[name]))
                if changes:
                    self.add(
                        "environments",
                        EnvironmentChange(name=name, status="changed", target=new[name].target, changes=changes),
                    )

    def settings(self) -> None:
        facts: Callable[[Catalog | None], dict[str, Value]] = lambda c: (
            _flatten(c.model_dump(mode="json", include={"defaults", "limits"})) if c else {}
        )
        for change in _changes(facts(self.base), facts(self.head)):
            self.add("settings", change)


def _by_model(app: Application) -> list[Binding]:
    return sorted(app.bindings, key=lambda b: b.model)


def _routes(binding: Binding | None) -> list[RouteWeight]:
    """The binding's routes in the catalog's order (it fixes which buckets each version owns)."""
    return [RouteWeight(version=r.version, weight=r.weight) for r in binding.routes] if binding else []


def _binding_facts(catalog: Catalog, binding: Binding) -> dict[str, Value]:
    serving = effective_serving(catalog, binding)
    rollout = effective_rollout(catalog, binding)
    gates = binding.gates or catalog.defaults.gates
    facts: dict[str, Value] = {"model": binding.model, "enabled": binding.enabled, "sticky_key": binding.sticky_key}
    for name in ("replicas", "min_replicas", "max_replicas", "target_concurrency", "cpu", "memory"):
        facts[f"serving.{name}"] = getattr(serving, name)
    for name in ("strategy", "step_percent", "interval_seconds", "max_error_rate", "max_p99_latency_ms"):
        facts[f"rollout.{name}"] = getattr(rollout, name)
    if gates is not None:
        facts.update(_flatten(gates, "gates"))
    if binding.analysis is not None:
        analysis = binding.analysis.model_dump(mode="json", exclude_none=True)
        guarded = analysis.get("guardrails", {})
        if guarded.get("outcomes"):  # keyed by outcome, so a reordering is no change
            guarded["outcomes"] = {limit["outcome"]: limit["max_drop"] for limit in guarded["outcomes"]}
        facts.update(_flatten(analysis, "analysis"))
    return facts


def diff_catalogs(base: Catalog | None, head: Catalog | None) -> CatalogDiff:
    """What ``head`` changes relative to ``base``; None on a side is an empty catalog (no file there).

    Both catalogs must be valid (routes name versions that exist).
    """
    builder = _Builder(base, head)
    renames = builder.models()
    builder.applications(renames)
    builder.environments()
    builder.settings()
    return CatalogDiff(**builder.diff)
