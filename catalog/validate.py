"""Validate a catalog in layers, collecting every problem: text, YAML, schema, cross-references, targets' limits."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar, cast

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from catalog.domain.effective import semver_key
from catalog.domain.models import (
    Application,
    Binding,
    Catalog,
    Defaults,
    EnvironmentSpec,
    EnvironmentTrust,
    Limits,
    Model,
    Store,
    Trust,
    TrustedKey,
)
from catalog.domain.problems import Loc, Problem, display_path, sort_key
from catalog.domain.rules import check_catalog, check_raw
from catalog.domain.schema_errors import schema_problem
from catalog.errors import CatalogInvalid, CatalogNotFound, CatalogTooLarge, SigningError
from catalog.yamlio.loader import MAX_CATALOG_BYTES, MEMORY_PER_BYTE, decode, parse
from catalog.yamlio.positions import Position, locate
from catalog.yamlio.reuse import Reused, parse_reusing

__all__ = [
    "Report",
    "key_file_problems",
    "load_catalog",
    "public_key_problem",
    "read_catalog_bytes",
    "validate_bytes",
    "validate_bytes_reusing",
    "validate_file",
]

MIB = 1 << 20


@dataclass
class Report:
    """The outcome of validation: the typed catalog when there are no errors, and every problem."""

    file: str
    catalog: Catalog | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> Catalog:
        if self.catalog is None or self.errors:
            raise CatalogInvalid(self.file, self.errors)
        return self.catalog


def read_catalog_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, or CatalogNotFound (exit 2) when it cannot be read at all."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CATALOG_BYTES:
            raise CatalogTooLarge(
                str(path),
                f"it is {size:,} bytes, over the {MAX_CATALOG_BYTES:,}-byte ({MAX_CATALOG_BYTES // MIB} MiB) limit "
                f"on a catalog file: validating takes about {MEMORY_PER_BYTE} times a file's size in memory "
                f"({MEMORY_PER_BYTE * MAX_CATALOG_BYTES / 1e9:.1f} GB at the limit)",
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise CatalogNotFound(str(path), "no such file (pass the path of models.yaml)") from None
    except IsADirectoryError:
        raise CatalogNotFound(str(path), "is a directory, not a catalog file") from None
    except OSError as e:
        raise CatalogNotFound(str(path), e.strerror or str(e)) from e


def validate_file(
    path: str | os.PathLike[str], target: str | None = None, only: Iterable[str] | None = None, *, git: bool = False
) -> Report:
    """The report of the catalog at ``path``: every problem, the targets' limits included (each
    environment checked against its own target; with ``target``, the environments named by
    applications, or ``only`` those, also against it, as ``synth --target`` deploys them), and the
    public keys of its trust policy read beside it (``key_file_problems``); with ``git``, also a warning for every folder of artifacts that git ignores (``ignored_store_warnings``)."""
    data = read_catalog_bytes(path)
    report = validate_bytes(data, str(path), target, only, folder=Path(path).parent)
    if git and report.catalog is not None:
        warnings = ignored_store_warnings(Path(path), report.catalog, data)
        report.problems = sorted(report.problems + warnings, key=sort_key)
    return report


def ignored_store_warnings(path: Path, catalog: Catalog, data: bytes) -> list[Problem]:
    """A warning for each folder store git ignores (at its entry), and for each artifact path outside
    the declared stores that git ignores (at its URI): a fresh clone, such as CI's, would not have
    those artifacts. Nothing outside a git repository."""
    from catalog.artifacts.locations import artifact_path, store_folder
    from catalog.domain.stores import store_of
    from catalog.gitio import ignored_by_git

    folder = path.resolve().parent
    probe = Path("sha256", "00", "0" * 64)  # an artifact the store would hold
    stores = catalog.stores or []
    roots = {i: root for i, store in enumerate(stores) if (root := store_folder(store, folder)) is not None}
    artifacts = {  # those in a declared store are covered by the store's own check
        (i, j): where
        for i, model in enumerate(catalog.models)
        for j, version in enumerate(model.versions)
        if store_of(stores, version.artifact.uri) is None
        and (where := artifact_path(version.artifact.uri, folder)) is not None
    }
    ignored = ignored_by_git(folder, [*roots.values(), *(r / probe for r in roots.values()), *artifacts.values()])
    if not ignored:
        return []
    found: list[Problem] = []
    for i, root in roots.items():
        rule = ignored.get(root) or ignored.get(root / probe)
        if rule is not None:
            store = stores[i]
            found.append(
                Problem(
                    "store.git-ignored",
                    f"store {store.name!r} ({store.uri}) is ignored by git ({rule}): a fresh clone, "
                    "such as CI's, will not have its artifacts",
                    loc=("stores", i, "uri"),
                    hint="commit the store: remove that rule from .gitignore, or keep artifacts in a registry store",
                    severity="warning",
                )
            )
    for (i, j), where in artifacts.items():
        rule = ignored.get(where)
        if rule is not None:
            uri = catalog.models[i].versions[j].artifact.uri
            found.append(
                Problem(
                    "artifact.git-ignored",
                    f"{uri} is ignored by git ({rule}): a fresh clone, such as CI's, will not have it",
                    loc=("models", i, "versions", j, "artifact", "uri"),
                    hint="register it into a committed store (stores:, e.g. artifacts/), or stop ignoring it",
                    severity="warning",
                )
            )
    text, _ = decode(data, str(path))
    document = parse(text, str(path)).data
    positions = locate(text, {p.loc for p in found})
    return [_place(p, str(path), document, positions.get(p.loc)) for p in found]


MAX_KEY_FILE_BYTES = 64 << 10  # a PEM public key is under 1 KiB


def public_key_problem(data: bytes) -> str:
    """What keeps ``data`` from being a release key's public half: '' for a PEM EC P-256 or P-384
    public key (``catalog.signing.keys.public_pem``), else why not."""
    from cryptography.exceptions import UnsupportedAlgorithm

    from catalog.signing.keys import public_pem

    if b"PRIVATE KEY-----" in data:
        return "holds a private key: commit only the public half (openssl ec -pubout)"
    try:
        public_pem(data, "")
    except SigningError as e:
        return f"is {e.detail}"
    except UnsupportedAlgorithm:
        return "is a key of an algorithm cryptography does not support; release keys are EC P-256 or P-384"
    return ""


def key_file_problems(folder: Path, trust: Trust | None) -> list[Problem]:
    """A problem for each trust key whose ``public_key`` file (relative to ``folder``, the catalog's)
    is missing, unreadable, or not an EC P-256 or P-384 public key in PEM."""
    found = []
    for i, key in enumerate(trust.keys if trust is not None else []):
        if key is None or key.public_key is None:
            continue
        path = folder / key.public_key
        try:
            with path.open("rb") as f:
                data = f.read(MAX_KEY_FILE_BYTES + 1)
            wrong = public_key_problem(data) if len(data) <= MAX_KEY_FILE_BYTES else "is too large for a public key"
        except FileNotFoundError:
            wrong = "does not exist"
        except OSError as e:
            wrong = f"cannot be read ({e.strerror or e})"
        if wrong:
            found.append(
                Problem(
                    "trust.key-file",
                    f"public key {key.public_key} of trust key {key.name!r} {wrong}",
                    loc=("trust", "keys", i, "public_key"),
                    hint="commit the signing key's public half (PEM, EC P-256 or P-384) at that path, "
                    "relative to the catalog's folder",
                )
            )
    return found


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """The typed catalog, or CatalogInvalid listing every error."""
    return validate_file(path).raise_for_errors()


def validate_bytes(
    data: bytes,
    filename: str,
    target: str | None = None,
    only: Iterable[str] | None = None,
    *,
    folder: Path | None = None,
) -> Report:
    text, problems = decode(data, filename)
    if problems:
        return Report(filename, None, problems)
    return validate_text(text, filename, target, only, folder=folder)


def _deployments(catalog: Catalog, target: str | None, only: Iterable[str] | None) -> list[tuple[str, str]]:
    """(environment, target) pairs whose target limits apply: each declared environment's own
    target, and ``target`` for the environments applications name (or ``only`` those)."""
    pairs: list[tuple[str, str]] = [(env.name, env.target) for env in catalog.environments or () if env is not None]
    if target is not None:
        named = {a.environment for a in catalog.applications if a is not None}
        pairs += [(env, target) for env in sorted(named if only is None else named & set(only))]
    return pairs


def _target_problems(catalog: Catalog, target: str | None, only: Iterable[str] | None) -> list[Problem]:
    deployments = [(env, t) for env, t in _deployments(catalog, target, only) if t != "local"]
    if not deployments:
        return []
    from catalog.synth.limits import target_problems  # the targets' modules load only when needed

    return target_problems(catalog, deployments)


def validate_bytes_reusing(data: bytes, filename: str, known_text: str, known: Catalog) -> Report:
    """The same report as ``validate_bytes(data, filename)``, faster when most models are written
    exactly as in ``known_text``, whose valid catalog is ``known`` (e.g. the base and head revisions
    of one change): those models are taken from ``known`` instead of being parsed and validated again
    (:mod:`catalog.yamlio.reuse`). The rest is parsed, validated and cross-checked as a whole; when
    anything at all is reported, or the texts are not laid out plainly, ``data`` is validated in full."""
    text, problems = decode(data, filename)
    document = None if problems else parse_reusing(text, filename, known_text, len(known.models))
    if document is not None:
        items = document["models"]
        assert isinstance(items, list)
        models = [known.models[m.index] if isinstance(m, Reused) else m for m in items]
        try:
            catalog = Catalog.model_validate({**document, "models": models})
        except ValidationError:
            catalog = None
        if catalog is not None:
            # duplicate names across models; a reused model's own versions were checked in known
            names = [{"name": m.name} if isinstance(m, Model) else m for m in models]
            if (
                not check_raw({**document, "models": names})
                and not check_catalog(catalog)
                and not _target_problems(catalog, None, None)
            ):
                return Report(filename, catalog, [])
    return validate_bytes(data, filename)


def validate_text(
    text: str,
    filename: str,
    target: str | None = None,
    only: Iterable[str] | None = None,
    *,
    folder: Path | None = None,
) -> Report:
    """The report of the catalog ``text``; given ``folder`` (the catalog's folder), the files it names
    there are read too (the trust policy's public keys)."""
    parsed = parse(text, filename)
    if parsed.data is None:
        return Report(filename, None, sorted(parsed.problems, key=sort_key))
    document = parsed.data
    if not isinstance(document, Mapping):
        problem = Problem(
            "schema.not-a-mapping",
            "the catalog must be a mapping with apiVersion, models and applications",
            file=filename,
            line=1,
            column=1,
        )
        return Report(filename, None, [problem])

    catalog: Catalog | None
    try:
        catalog = Catalog.model_validate(document)
        schema_errors: list[ErrorDetails] = []
        unchecked: dict[str, frozenset[str]] = {}
        unchecked_envs: frozenset[str] = frozenset()
        unchecked_keys: frozenset[str] = frozenset()
        partial = catalog
    except ValidationError as e:
        catalog = None
        schema_errors = e.errors(include_url=False)
        partial, unchecked, unchecked_envs, unchecked_keys = _partial_catalog(document)

    raw_problems = check_raw(document)
    rule_problems = check_catalog(
        partial, unchecked_models=unchecked, unchecked_environments=unchecked_envs, unchecked_keys=unchecked_keys
    )
    rule_problems += _target_problems(partial, target, only)
    if folder is not None:
        rule_problems += key_file_problems(folder, partial.trust)
    needs_position = [tuple(err["loc"]) for err in schema_errors] + [p.loc for p in raw_problems + rule_problems]
    if schema_errors or any(p.severity == "error" for p in raw_problems + rule_problems):
        catalog = None  # not returned: let it go before the text is composed again
        del partial
    positions = locate(text, set(needs_position)) if needs_position else {}

    def source_of(loc: Loc) -> tuple[str | None, bool]:
        pos = positions.get(loc)
        return (pos.source, pos.quoted) if pos is not None and pos.found else (None, False)

    found = [schema_problem(err, source_of) for err in schema_errors] + raw_problems + rule_problems
    located = [_place(p, filename, document, positions.get(p.loc)) for p in found]
    # A value the YAML layer refused (an unsafe tag, say) would fail the schema too: say it once.
    yaml_lines = {p.line for p in parsed.problems}
    located = parsed.problems + [p for p in located if p.line not in yaml_lines]
    located.sort(key=sort_key)
    return Report(filename, catalog if not any(p.severity == "error" for p in located) else None, located)


def _place(problem: Problem, filename: str, document: object, position: Position | None) -> Problem:
    line = column = 0
    if position is not None:
        line, column = (position.key_line, position.key_column) if problem.at_key else (position.line, position.column)
    return replace(problem, file=filename, line=line, column=column, path=display_path(problem.loc, document))


T = TypeVar("T")


def _valid(validate: Callable[[object], T], value: object) -> T | None:
    try:
        return validate(value)
    except ValidationError:
        return None


_MODEL = TypeAdapter(Model).validate_python
_APPLICATION = TypeAdapter(Application).validate_python
_BINDING = TypeAdapter(Binding).validate_python
_ENVIRONMENT = TypeAdapter(EnvironmentSpec).validate_python
_STORES = TypeAdapter(list[Store]).validate_python
_TRUSTED_KEY = TypeAdapter(TrustedKey).validate_python
_ENVIRONMENT_TRUST = TypeAdapter(EnvironmentTrust).validate_python


def _partial_catalog(
    document: Mapping[str, object],
) -> tuple[Catalog, dict[str, frozenset[str]], frozenset[str], frozenset[str]]:
    """A catalog of the items that pass the schema, so cross-references can still be checked.

    Items that fail stay in their lists as None, so list indices (and positions) stay right.
    Also returned: the models that failed, with their version strings, and the names of the
    environments and of the trust keys that failed.
    """
    models: list[Model | None] = []
    unchecked: dict[str, frozenset[str]] = {}
    for item in _list(document.get("models")):
        model = _valid(_MODEL, item)
        models.append(model if isinstance(model, Model) else None)
        if model is None and isinstance(item, Mapping) and isinstance(item.get("name"), str):
            unchecked[item["name"]] = frozenset(
                semver_key(v["version"])
                for v in _list(item.get("versions"))
                if isinstance(v, Mapping) and isinstance(v.get("version"), str)
            )
    apps: list[Application | None] = []
    for item in _list(document.get("applications")):
        app = _valid(_APPLICATION, item)
        if app is None and isinstance(item, Mapping):
            # keep the application's valid bindings checkable
            app = Application.model_construct(
                name=str(item.get("name", "")),
                owner=str(item.get("owner", "")),
                environment=str(item.get("environment", "")),
                bindings=cast("list[Binding]", [_valid(_BINDING, b) for b in _list(item.get("bindings"))]),
            )
        apps.append(app if isinstance(app, Application) else None)
    envs: list[EnvironmentSpec | None] | None = None
    unchecked_envs: set[str] = set()
    if isinstance(document.get("environments"), list):
        envs = []
        for item in _list(document.get("environments")):
            env = _valid(_ENVIRONMENT, item)
            envs.append(env if isinstance(env, EnvironmentSpec) else None)
            if env is None and isinstance(item, Mapping) and isinstance(item.get("name"), str):
                unchecked_envs.add(item["name"])
    defaults = _valid(Defaults.model_validate, document.get("defaults", {})) or Defaults()
    limits = _valid(Limits.model_validate, document.get("limits", {})) or Limits()
    stores = _valid(_STORES, document["stores"]) if "stores" in document else None  # all, or none checked
    trust, unchecked_keys = _partial_trust(document.get("trust"))
    # The lists hold None where an item failed (the casts): the rules read a partial catalog so.
    partial = Catalog.model_construct(
        api_version="modelcat/v1",
        defaults=defaults,
        limits=limits,
        stores=stores,
        environments=cast("list[EnvironmentSpec] | None", envs),
        trust=trust,
        models=cast("list[Model]", models),
        applications=cast("list[Application]", apps),
    )
    return partial, unchecked, frozenset(unchecked_envs), unchecked_keys


def _partial_trust(value: object) -> tuple[Trust | None, frozenset[str]]:
    """The trust policy's keys and environment entries that pass the schema (None in place of those
    that fail, so indices stay right), and the names of the keys that fail."""
    if not isinstance(value, Mapping):
        return None, frozenset()
    keys = [_valid(_TRUSTED_KEY, item) for item in _list(value.get("keys"))]
    failed = frozenset(
        item["name"]
        for item, key in zip(_list(value.get("keys")), keys, strict=True)
        if key is None and isinstance(item, Mapping) and isinstance(item.get("name"), str)
    )
    entries = [_valid(_ENVIRONMENT_TRUST, item) for item in _list(value.get("environments"))]
    trust = Trust.model_construct(
        keys=cast("list[TrustedKey]", keys), environments=cast("list[EnvironmentTrust]", entries)
    )
    return trust, failed


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
