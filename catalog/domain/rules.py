"""Cross-reference rules: what the schema alone cannot see. Pure functions returning problems.

``check_raw`` looks at the plain document (so it still works when some items failed the schema);
``check_catalog`` looks at the typed catalog, built only from items that passed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from catalog.domain.contract import signature_changes
from catalog.domain.models import Application, Binding, Catalog, Model, Serving, Version
from catalog.domain.problems import Problem

__all__ = ["EffectiveServing", "check_catalog", "check_raw", "effective_serving", "normalise_name", "semver_key"]

_CONTENT_HEX = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_OCI_PINNED = re.compile(r"^oci://[^/@\s]+/[^@\s]+@sha256:[0-9a-f]{64}$")
# Metrics that are fractions by definition: a value outside [0, 1] is a unit mistake.
_UNIT_METRIC = re.compile(
    r"^(accuracy|balanced_accuracy|auc|roc_auc|pr_auc|precision|recall|f1|ndcg|map|mrr|hit_rate|"
    r"hitrate|coverage|specificity|sensitivity)(@[0-9]+|_at_.*|_[a-z0-9]+)?$"
)


def normalise_name(name: str) -> str:
    """The form two names are compared in: trimmed, case-folded, '_' read as '-'."""
    return name.strip().casefold().replace("_", "-")


def semver_key(version: str) -> str:
    """Versions that differ only in build metadata (after '+') are the same version."""
    return version.split("+", 1)[0]


def _items(document: object, key: str) -> list[tuple[int, Mapping[str, object]]]:
    seq = document.get(key) if isinstance(document, Mapping) else None
    if not isinstance(seq, list):
        return []
    return [(i, item) for i, item in enumerate(seq) if isinstance(item, Mapping)]


def _duplicates(entries: Sequence[tuple[tuple[str | int, ...], str]], what: str, code: str) -> Iterator[Problem]:
    """One problem per entry whose normalised name was already used by an earlier one."""
    first: dict[str, str] = {}
    for loc, name in entries:
        norm = normalise_name(name)
        if norm in first:
            same = first[norm] == name
            yield Problem(
                code,
                f"{what} {name!r} is defined twice"
                if same
                else f"{what} {name!r} collides with {first[norm]!r} (names are compared trimmed and case-insensitively)",
                loc=loc,
                hint=f"give each {what} a distinct name, or merge the two entries",
            )
        else:
            first[norm] = name


def check_raw(document: object) -> list[Problem]:
    """Duplicate names, checked on the plain document so invalid spellings are compared too."""
    problems: list[Problem] = []
    models = _items(document, "models")
    problems += _duplicates(
        [(("models", i, "name"), m["name"]) for i, m in models if isinstance(m.get("name"), str)],
        "model",
        "ref.duplicate-model",
    )
    for i, model in models:
        problems += _duplicates(
            [
                (("models", i, "versions", j, "version"), semver_key(v["version"]))
                for j, v in _items(model, "versions")
                if isinstance(v.get("version"), str)
            ],
            "version",
            "ref.duplicate-version",
        )
    problems += _duplicates(
        [
            (("applications", i, "name"), a["name"])
            for i, a in _items(document, "applications")
            if isinstance(a.get("name"), str)
        ],
        "application",
        "ref.duplicate-application",
    )
    return problems


@dataclass(frozen=True, slots=True)
class EffectiveServing:
    replicas: int
    min_replicas: int
    max_replicas: int
    target_concurrency: int
    cpu: str | None
    memory: str | None


def effective_serving(catalog: Catalog, binding: Binding) -> EffectiveServing:
    """A binding's serving block over the catalog defaults over built-in defaults."""
    own, base = binding.serving, catalog.defaults.serving

    def pick(field: str, fallback: int) -> int:
        for source in (own, base):
            value = getattr(source, field)
            if value is not None:
                return int(value)
        return fallback

    replicas = pick("replicas", 1)
    min_replicas = pick("min_replicas", min(replicas, 1))
    max_replicas = pick("max_replicas", max(replicas, min_replicas, 1))
    resources = own.resources or base.resources
    return EffectiveServing(
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_concurrency=pick("target_concurrency", 8),
        cpu=resources.cpu if resources else None,
        memory=resources.memory if resources else None,
    )


def check_catalog(catalog: Catalog, *, unchecked_models: Mapping[str, frozenset[str]] | None = None) -> list[Problem]:
    """Every cross-reference problem of a typed catalog.

    For a catalog rebuilt from the items that passed the schema, list items that failed are None
    and skipped; ``unchecked_models`` maps the names of the models among them to the version
    strings they list, so bindings to them are checked as far as those allow.
    """
    problems: list[Problem] = []
    problems += _check_limits(catalog)
    models = {m.name: m for m in catalog.models if m is not None}
    for i, model in enumerate(catalog.models):
        if model is not None:
            problems += _check_model(catalog, ("models", i), model)
    for i, app in enumerate(catalog.applications):
        if app is not None:
            problems += _check_application(catalog, ("applications", i), app, models, unchecked_models or {})
    if catalog.defaults.gates is not None:
        problems += _check_gates(("defaults", "gates"), catalog.defaults.gates.min_metrics)
    problems += _check_serving(("defaults", "serving"), catalog.defaults.serving)
    return problems


def _check_limits(catalog: Catalog) -> Iterator[Problem]:
    limits = catalog.limits
    if limits.min_artifact_bytes is not None and limits.min_artifact_bytes > limits.max_artifact_bytes:
        yield Problem(
            "limits.inverted",
            f"min_artifact_bytes ({limits.min_artifact_bytes:,}) is above max_artifact_bytes ({limits.max_artifact_bytes:,})",
            loc=("limits", "min_artifact_bytes"),
            hint="lower min_artifact_bytes or raise max_artifact_bytes",
        )


def _metric_range(loc: tuple[str | int, ...], name: str, value: float, what: str) -> Iterator[Problem]:
    if _UNIT_METRIC.match(name) and not 0.0 <= value <= 1.0:
        yield Problem(
            "metric.out-of-range",
            f"{what} {name} = {value:g} is outside [0, 1]",
            loc=loc,
            hint=f"{name} is a fraction; write e.g. 0.91, not 91",
        )


def _check_model(catalog: Catalog, loc: tuple[str | int, ...], model: Model) -> Iterator[Problem]:
    limit = model.max_artifact_bytes or catalog.limits.max_artifact_bytes
    if model.max_artifact_bytes and model.max_artifact_bytes > catalog.limits.max_artifact_bytes:
        yield Problem(
            "limits.model-above-global",
            f"max_artifact_bytes ({model.max_artifact_bytes:,}) is above the catalog limit ({catalog.limits.max_artifact_bytes:,})",
            loc=(*loc, "max_artifact_bytes"),
            hint="a model may only tighten the global limit",
        )
        limit = catalog.limits.max_artifact_bytes
    minimum = catalog.limits.min_artifact_bytes
    digests: dict[str, str] = {}
    for j, version in enumerate(model.versions):
        vloc = (*loc, "versions", j)
        artifact = version.artifact
        yield from _check_uri((*vloc, "artifact", "uri"), artifact.uri, artifact.digest)
        if artifact.size_bytes > limit:
            yield Problem(
                "artifact.too-large",
                f"artifact is {artifact.size_bytes:,} bytes, over the limit of {limit:,}",
                loc=(*vloc, "artifact", "size_bytes"),
                hint="shrink the model, or raise max_artifact_bytes for this model with a reviewer's consent",
            )
        if minimum is not None and artifact.size_bytes < minimum:
            yield Problem(
                "artifact.too-small",
                f"artifact is {artifact.size_bytes:,} bytes, under the minimum of {minimum:,}",
                loc=(*vloc, "artifact", "size_bytes"),
                hint="a file this small is rarely a real model; check the upload",
            )
        if artifact.digest in digests:
            yield Problem(
                "artifact.duplicate-digest",
                f"version {version.version} has the same digest as version {digests[artifact.digest]}",
                loc=(*vloc, "artifact", "digest"),
                hint="each version must name different bytes; register the new artifact",
            )
        else:
            digests[artifact.digest] = version.version
        if version.registered_at < version.trained_at:
            yield Problem(
                "version.registered-before-trained",
                f"registered_at ({version.registered_at.isoformat()}) is before trained_at ({version.trained_at.isoformat()})",
                loc=(*vloc, "registered_at"),
                hint="a version is registered after its training; check the dates",
            )
        for name, value in version.metrics.items():
            yield from _metric_range((*vloc, "metrics", name), name, value, "metric")


def _check_uri(loc: tuple[str | int, ...], uri: str, digest: str) -> Iterator[Problem]:
    hexdigest = digest.removeprefix("sha256:")
    if uri.startswith("oci://"):
        if not _OCI_PINNED.match(uri):
            yield Problem(
                "artifact.mutable-reference",
                f"{uri!r} is not pinned by digest (a tag can be moved to other bytes)",
                loc=loc,
                hint="reference the manifest by digest: oci://host/repo@sha256:<64 hex>",
            )
        return
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in ("", "file"):
        yield Problem(
            "artifact.unsupported-scheme",
            f"{scheme}:// artifacts are not supported",
            loc=loc,
            hint="use a path relative to models.yaml, file:///absolute/path or oci://host/repo@sha256:...",
        )
        return
    named = _CONTENT_HEX.findall(uri)
    if not named:
        yield Problem(
            "artifact.mutable-reference",
            f"{uri!r} does not name the artifact's digest (the file behind it can be replaced)",
            loc=loc,
            hint="store artifacts by digest, e.g. artifacts/sha256/ab/<64 hex>",
        )
    elif named[-1] != hexdigest:
        yield Problem(
            "artifact.uri-digest-mismatch",
            f"the URI names sha256:{named[-1][:12]}… but digest is sha256:{hexdigest[:12]}…",
            loc=loc,
            hint="point the URI at the stored object of this digest",
        )


def _close(word: str, choices: Sequence[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}? " if match else ""


def _check_application(
    catalog: Catalog,
    loc: tuple[str | int, ...],
    app: Application,
    models: Mapping[str, Model],
    unchecked_models: Mapping[str, frozenset[str]],
) -> Iterator[Problem]:
    bound: dict[str, int] = {}
    for b, binding in enumerate(app.bindings):
        if binding is None:
            continue
        bloc = (*loc, "bindings", b)
        if binding.model in bound:
            yield Problem(
                "binding.model-twice",
                f"model {binding.model!r} is bound twice in application {app.name!r} (bindings {bound[binding.model]} and {b})",
                loc=(*bloc, "model"),
                hint="list all its versions under one binding's routes",
            )
        else:
            bound[binding.model] = b
        if binding.serving.model_fields_set & {"replicas", "min_replicas", "max_replicas"}:
            yield from _check_serving((*bloc, "serving"), binding.serving, effective_serving(catalog, binding))
        if binding.gates is not None:
            yield from _check_gates((*bloc, "gates"), binding.gates.min_metrics)
        total = sum(route.weight for route in binding.routes)
        if total != 100:
            yield Problem(
                "binding.weights",
                f"route weights add up to {total}, not 100",
                loc=(*bloc, "routes"),
                hint="weights are integer percentages; make them sum to exactly 100",
                at_key=True,
            )
        model = models.get(binding.model)
        if model is None and binding.model not in unchecked_models:
            yield Problem(
                "ref.missing-model",
                f"model {binding.model!r} is not in the catalog",
                loc=(*bloc, "model"),
                hint=_close(binding.model, [*models, *unchecked_models]) + "bind a model listed under 'models:'",
            )
            continue
        # a model that failed the schema still tells which versions it has, not their stages
        versions: Mapping[str, Version | None] = (
            {semver_key(v.version): v for v in model.versions}
            if model is not None
            else dict.fromkeys(unchecked_models[binding.model])
        )
        yield from _check_signatures(bloc, binding, versions)
        seen: set[str] = set()
        for r, route in enumerate(binding.routes):
            rloc = (*bloc, "routes", r)
            key = semver_key(route.version)
            if key in seen:
                yield Problem(
                    "binding.route-twice",
                    f"version {route.version} is routed twice",
                    loc=(*rloc, "version"),
                    hint="give each version one route and add the weights together",
                )
            seen.add(key)
            version = versions.get(key)
            if key not in versions:
                yield Problem(
                    "ref.missing-version",
                    f"model {binding.model!r} has no version {route.version}",
                    loc=(*rloc, "version"),
                    hint=_close(route.version, list(versions)) + f"known versions: {', '.join(versions)}",
                )
            elif version is None:
                continue
            elif version.stage == "retired":
                yield Problem(
                    "binding.retired-version",
                    f"version {route.version} of {binding.model!r} is retired and cannot be routed",
                    loc=(*rloc, "version"),
                    hint="route to a candidate or production version, or un-retire this one",
                )
            elif version.stage == "deprecated" and route.weight > 0:
                yield Problem(
                    "binding.deprecated-version",
                    f"version {route.version} of {binding.model!r} is deprecated but gets {route.weight}% of traffic",
                    loc=(*rloc, "version"),
                    hint="move its traffic to a newer version",
                    severity="warning",
                )


def _check_serving(loc: tuple[str | int, ...], own: Serving, eff: EffectiveServing | None = None) -> Iterator[Problem]:
    """Replica bounds, on the block as written and (for bindings) as it takes effect."""
    lo, hi, n = own.min_replicas, own.max_replicas, own.replicas
    if eff is not None:
        lo, hi, n = eff.min_replicas, eff.max_replicas, eff.replicas
    if lo is not None and hi is not None and lo > hi:
        yield Problem(
            "serving.bounds",
            f"min_replicas ({lo}) is above max_replicas ({hi})",
            loc=(*loc, "min_replicas"),
            hint="make min_replicas <= replicas <= max_replicas",
        )
    elif n is not None and ((lo is not None and n < lo) or (hi is not None and n > hi)):
        yield Problem(
            "serving.bounds",
            f"replicas ({n}) is outside [{lo}, {hi}]",
            loc=(*loc, "replicas"),
            hint="make min_replicas <= replicas <= max_replicas",
        )


def _check_gates(loc: tuple[str | int, ...], min_metrics: Mapping[str, float]) -> Iterator[Problem]:
    for name, value in min_metrics.items():
        yield from _metric_range((*loc, "min_metrics", name), name, value, "gate")


def _check_signatures(
    loc: tuple[str | int, ...], binding: Binding, versions: Mapping[str, Version | None]
) -> Iterator[Problem]:
    """Versions routed side by side must accept the same requests: compare each with the first."""
    routed = [(r, versions.get(semver_key(route.version))) for r, route in enumerate(binding.routes)]
    known = [(r, v) for r, v in routed if v is not None]
    if len(known) < 2:
        return
    _, first = known[0]
    for r, version in known[1:]:
        breaking = [c.text for c in signature_changes(first.signature, version.signature) if c.kind == "breaking"]
        if breaking:
            yield Problem(
                "binding.incompatible-signatures",
                f"version {version.version} cannot share traffic with {first.version}: {'; '.join(breaking)}",
                loc=(*loc, "routes", r, "version"),
                hint="callers send one request shape to every routed version; route compatible versions only",
            )
