"""Cross-reference rules: what the schema alone cannot see. Pure functions returning problems.

``check_raw`` looks at the plain document (so it still works when some items failed the schema);
``check_catalog`` looks at the typed catalog, built only from items that passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from catalog.domain.artifact_uris import check_artifact_uri
from catalog.domain.contract import signature_changes
from catalog.domain.effective import EffectiveServing, effective_serving, semver_key
from catalog.domain.live_metrics import check_live_metric
from catalog.domain.models import (
    DNS_LABEL,
    Application,
    ArtifactSource,
    Binding,
    Catalog,
    EnvironmentSpec,
    Model,
    Serving,
    Version,
)
from catalog.domain.outcome_rules import check_analysis, check_outcomes
from catalog.domain.problems import Problem
from catalog.domain.rollout_rules import check_mirror, check_rollout
from catalog.domain.routing import SPLIT_HINT, split_problem
from catalog.domain.stores import check_stores
from catalog.domain.trust_rules import check_trust
from catalog.wording import did_you_mean, known_choices

__all__ = ["check_catalog", "check_raw", "normalise_name"]

# Metrics that are fractions by definition: a value outside [0, 1] is a unit mistake.
_UNIT_METRIC = re.compile(
    r"^(accuracy|balanced_accuracy|auc|roc_auc|pr_auc|precision|recall|f1|ndcg|map|mrr|hit_rate|"
    r"hitrate|coverage|specificity|sensitivity)(@[0-9]+|_at_.*|_[a-z0-9]+)?$"
)
_DNS_LABEL = re.compile(DNS_LABEL)
# Artifact URIs a target can fetch as they are, without a place they were published to.
_DIRECT_SCHEMES = ("oci://", "s3://")


def normalise_name(name: str) -> str:
    """The form two names are compared in: trimmed, case-folded, '_' read as '-'."""
    return name.strip().casefold().replace("_", "-")


def _items(document: object, key: str) -> list[tuple[int, Mapping[str, object]]]:
    seq = document.get(key) if isinstance(document, Mapping) else None
    if not isinstance(seq, list):
        return []
    return [(i, item) for i, item in enumerate(seq) if isinstance(item, Mapping)]


def _named(parent: object, loc: tuple[str, ...], field: str = "name") -> list[tuple[tuple[str | int, ...], str]]:
    """(location, name) of each item of the list at ``loc[-1]`` in ``parent`` (``loc``: its path in
    the document) whose ``field`` is a string."""
    return [((*loc, i, field), name) for i, item in _items(parent, loc[-1]) if isinstance(name := item.get(field), str)]


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
    problems += _duplicates(_named(document, ("models",)), "model", "ref.duplicate-model")
    for i, model in _items(document, "models"):
        problems += _duplicates(
            [
                (("models", i, "versions", j, "version"), semver_key(version))
                for j, v in _items(model, "versions")
                if isinstance(version := v.get("version"), str)
            ],
            "version",
            "ref.duplicate-version",
        )
    trust = document.get("trust") if isinstance(document, Mapping) else None
    for items, what, code in [
        (_named(document, ("applications",)), "application", "ref.duplicate-application"),
        (_named(document, ("environments",)), "environment", "ref.duplicate-environment"),
        (_named(document, ("stores",)), "store", "ref.duplicate-store"),
        (_named(trust, ("trust", "keys")), "trust key", "ref.duplicate-trust-key"),
        (
            _named(trust, ("trust", "environments"), "environment"),
            "trusted environment",
            "ref.duplicate-trust-environment",
        ),
    ]:
        problems += _duplicates(items, what, code)
    return problems


def check_catalog(
    catalog: Catalog,
    *,
    unchecked_models: Mapping[str, frozenset[str]] | None = None,
    unchecked_environments: frozenset[str] = frozenset(),
    unchecked_keys: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Every cross-reference problem of a typed catalog.

    For a catalog rebuilt from the items that passed the schema, list items that failed are None
    and skipped; ``unchecked_models`` maps the names of the models among them to the version
    strings they list, so bindings to them are checked as far as those allow, and
    ``unchecked_environments`` and ``unchecked_keys`` name the environments and trust keys among them.
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
    problems += _check_environments(catalog, models, unchecked_environments)
    problems += check_stores(catalog)
    problems += check_trust(catalog, unchecked_environments=unchecked_environments, unchecked_keys=unchecked_keys)
    if catalog.defaults.gates is not None:
        problems += _check_gates(("defaults", "gates"), catalog.defaults.gates.min_metrics)
    problems += _check_serving(("defaults", "serving"), catalog.defaults.serving)
    if catalog.defaults.rollout is not None:
        problems += check_rollout(("defaults", "rollout"), catalog.defaults.rollout, None)
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
        yield from check_artifact_uri((*vloc, "artifact", "uri"), artifact.uri, artifact.digest)
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


def _check_application(
    catalog: Catalog,
    loc: tuple[str | int, ...],
    app: Application,
    models: Mapping[str, Model],
    unchecked_models: Mapping[str, frozenset[str]],
) -> Iterator[Problem]:
    yield from check_outcomes(loc, app)
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
        if binding.rollout is not None:
            yield from check_rollout((*bloc, "rollout"), binding.rollout, catalog.defaults.rollout)
        yield from check_analysis(catalog, bloc, app, binding)
        yield from check_live_metric(catalog, bloc, app, binding)
        unbalanced = split_problem(route.weight for route in binding.routes)
        if unbalanced:
            yield Problem("binding.weights", unbalanced, loc=(*bloc, "routes"), hint=SPLIT_HINT, at_key=True)
        model = models.get(binding.model)
        if model is None and binding.model not in unchecked_models:
            yield Problem(
                "ref.missing-model",
                f"model {binding.model!r} is not in the catalog",
                loc=(*bloc, "model"),
                hint=did_you_mean(binding.model, [*models, *unchecked_models]) + "bind a model listed under 'models:'",
            )
            continue
        # a model that failed the schema still tells which versions it has, not their stages
        versions: Mapping[str, Version | None] = (
            {semver_key(v.version): v for v in model.versions}
            if model is not None
            else dict.fromkeys(unchecked_models[binding.model])
        )
        yield from _check_signatures(bloc, binding, versions)
        yield from check_mirror(bloc, binding, versions)
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
                    hint=known_choices(route.version, versions, "versions"),
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


@dataclass(frozen=True, slots=True)
class _Routed:
    application: str
    model: str
    version: str
    uri: str


def _routed_artifacts(catalog: Catalog, models: Mapping[str, Model]) -> dict[str, list[_Routed]]:
    """Per environment, the artifact of every route it deploys."""
    out: dict[str, list[_Routed]] = {}
    for app in catalog.applications:
        if app is None:
            continue
        for binding in app.bindings:
            model = models.get(binding.model) if binding is not None and binding.enabled else None
            if model is None:
                continue
            versions = {semver_key(v.version): v for v in model.versions}
            for route in binding.routes:
                version = versions.get(semver_key(route.version))
                if version is not None:
                    routed = _Routed(app.name, model.name, version.version, version.artifact.uri)
                    out.setdefault(app.environment, []).append(routed)
    return out


def _check_environments(catalog: Catalog, models: Mapping[str, Model], unchecked: frozenset[str]) -> Iterator[Problem]:
    """Applications name declared environments; each environment can deploy to its target."""
    if catalog.environments is None:
        return  # implicit environments: whatever the applications name exists
    declared = [e.name for e in catalog.environments if e is not None]
    used: set[str] = set()
    for i, app in enumerate(catalog.applications):
        if app is None or not _DNS_LABEL.match(app.environment):
            continue  # the schema reports a malformed name
        used.add(app.environment)
        if app.environment not in declared and app.environment not in unchecked:
            listed = ", ".join(sorted({*declared, *unchecked})) or "none"
            yield Problem(
                "ref.missing-environment",
                f"environment {app.environment!r} is not declared under 'environments:'",
                loc=("applications", i, "environment"),
                hint=did_you_mean(app.environment, [*declared, *unchecked]) + f"declared environments: {listed}",
            )
    artifacts = _routed_artifacts(catalog, models)
    for i, env in enumerate(catalog.environments):
        if env is None:
            continue
        loc = ("environments", i)
        if env.name not in used:
            yield Problem(
                "env.unused",
                f"no application runs in environment {env.name!r}",
                loc=(*loc, "name"),
                hint="set an application's environment to it, or remove it",
                severity="warning",
            )
        yield from _check_environment(loc, env, artifacts.get(env.name, []))


def _check_environment(
    loc: tuple[str | int, ...], env: EnvironmentSpec, artifacts: Sequence[_Routed]
) -> Iterator[Problem]:
    if env.target != "local" and getattr(env, env.target) is None:
        yield Problem(
            "env.missing-settings",
            f"environment {env.name!r} deploys to {env.target} but has no {env.target}: block",
            loc=(*loc, "target"),
            hint=f"add a {env.target}: block with this environment's {env.target} settings, or change target",
        )
    paths = [a for a in artifacts if not a.uri.startswith(_DIRECT_SCHEMES)]
    k8s = env.kubernetes
    if k8s is not None:
        yield from _check_artifact_source((*loc, "kubernetes", "artifact_source"), k8s.artifact_source, paths)
        yield from _check_image((*loc, "kubernetes", "image"), k8s.image)
    if env.kserve is not None and env.kserve.storage_uri_prefix is None and paths:
        yield Problem(
            "env.artifact-unreachable",
            f"kserve needs storage_uri_prefix: {_first(paths)}, not an oci:// URI",
            loc=(*loc, "kserve"),
            hint="add storage_uri_prefix: where these artifacts are published (oci://host/repo or s3://bucket/prefix)",
            at_key=True,
        )
    if env.sagemaker is not None:
        yield from _check_image((*loc, "sagemaker", "image"), env.sagemaker.image)


def _first(paths: Sequence[_Routed]) -> str:
    first = paths[0]
    more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
    return f"{first.model} {first.version} (application {first.application}) is at {first.uri}{more}"


def _check_artifact_source(
    loc: tuple[str | int, ...], source: ArtifactSource, paths: Sequence[_Routed]
) -> Iterator[Problem]:
    needs = {"http": "base_url", "pvc": "pvc"}
    for kind, field in needs.items():
        value = getattr(source, field)
        if source.kind == kind and value is None:
            yield Problem(
                "env.artifact-source",
                f"artifact_source kind {kind} needs {field}",
                loc=(*loc, "kind"),
                hint=f"add {field}: "
                + ("the URL the artifact paths are relative to" if kind == "http" else "the claim's name"),
            )
        elif source.kind != kind and value is not None:
            yield Problem(
                "env.artifact-source",
                f"{field} means nothing for artifact_source kind {source.kind}",
                loc=(*loc, field),
                hint=f"remove {field}, or set kind: {kind}",
            )
    if source.kind == "pvc" and source.registry_secret is not None:
        yield Problem(
            "env.artifact-source",
            "registry_secret means nothing for artifact_source kind pvc (the claim is mounted, not fetched)",
            loc=(*loc, "registry_secret"),
            hint="remove registry_secret, or fetch from a registry (kind oci) or server (kind http)",
        )
    if source.kind == "oci" and paths:
        yield Problem(
            "env.artifact-unreachable",
            f"artifact_source kind oci pulls oci:// URIs, but {_first(paths)}",
            loc=(*loc, "kind"),
            hint="register the artifacts in an OCI registry (modelcat register --store oci://...), "
            "or serve them with kind http or pvc",
        )


def _check_image(loc: tuple[str | int, ...], image: str) -> Iterator[Problem]:
    name = image.split("@", 1)[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else None
    if "@sha256:" not in image and tag in (None, "latest"):
        yield Problem(
            "env.image-unpinned",
            f"image {image!r} is not pinned: {'latest' if tag else 'no tag means latest, which'} moves with every build",
            loc=loc,
            hint="name a release tag (e.g. :0.4.0) or a digest (@sha256:...)",
            severity="warning",
        )
