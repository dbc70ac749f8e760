"""The catalog's artifact stores: which exist, which is the default, which one an artifact URI lies in,
and the rules on them. Pure: no IO.

A store is a folder relative to the catalog's folder (committed with it, such as ``artifacts``), a
``file:///absolute/folder``, or an ``oci://host[:port]/repository``. A folder store is
content-addressed: an artifact lies at ``<folder>/sha256/<2 hex>/<64 hex>``. A catalog without
``stores:`` has one implied default store, the folder ``artifacts`` beside it; its URIs are not
checked against it, so a catalog written before stores existed stays valid.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence

from catalog.domain.artifact_uris import UriRefusal, parse_artifact_uri
from catalog.domain.models import Catalog, Store
from catalog.domain.problems import Loc, Problem

__all__ = [
    "IMPLIED_STORE",
    "catalog_stores",
    "check_stores",
    "default_store",
    "folder_of",
    "store_of",
]

IMPLIED_STORE = Store(name="artifacts", uri="artifacts", default=True)

_REGISTER_HINT = "register the version into a store (`modelcat register --store NAME`), or declare the store it lies in under stores:"
_SIGN_HINT = "sign the version again (`modelcat sign` keeps the bundle beside its artifact), or declare its store"
_SUPPORTED = "a folder relative to the catalog (e.g. artifacts), file:///absolute/folder or oci://host/repository"


def catalog_stores(catalog: Catalog) -> list[Store]:
    """The catalog's stores: those it declares, or the implied ``artifacts`` folder."""
    return [s for s in catalog.stores if s is not None] if catalog.stores is not None else [IMPLIED_STORE]


def default_store(catalog: Catalog) -> Store:
    """The store ``modelcat register`` writes into."""
    stores = catalog_stores(catalog)
    return next((s for s in stores if s.default), stores[0])


def _problem_with(uri: str) -> str:
    """What is wrong with a store URI ("" when nothing): the artifact URI parser's verdict on it, plus
    what only a store must not be (a registry reference with a tag or digest, an absolute path
    without file:///, the catalog's own folder)."""
    parsed = parse_artifact_uri(uri.rstrip("/") if uri.startswith("oci://") else uri)
    if isinstance(parsed, UriRefusal):
        return f"{uri!r} is not a supported store" if parsed.code == "artifact.unsupported-scheme" else parsed.message
    if parsed.kind == "oci":
        if parsed.digest is not None or parsed.tag is not None:
            return f"{uri!r} is not oci://host[:port]/repository (no tag, no digest)"
    elif parsed.kind == "path" and parsed.path.startswith("/"):
        return f"{uri!r} is an absolute path: write file://{parsed.path}"
    elif posixpath.normpath(parsed.path) == ".":
        return f"{uri!r} is the catalog's own folder"
    return ""


def folder_of(store: Store) -> str | None:
    """The folder of a folder store: a normalised path relative to the catalog's folder, or an
    absolute one for ``file:///``; None for a registry."""
    if store.uri.startswith("oci://"):
        return None
    if store.uri.startswith("file://"):
        return posixpath.normpath(store.uri.removeprefix("file://"))
    return posixpath.normpath(store.uri)


def store_of(stores: Sequence[Store], uri: str) -> Store | None:
    """The store an artifact URI lies in: an ``oci://`` URI in the store of its repository, a path
    inside a folder store's folder (relative paths in relative folders, ``file:///`` in ``file:///``)."""
    if uri.startswith("oci://"):
        repository = uri.split("@", 1)[0]
        return next((s for s in stores if s.uri.startswith("oci://") and s.uri.rstrip("/") == repository), None)
    absolute = uri.startswith("file://")
    path = posixpath.normpath(uri.removeprefix("file://"))
    for store in stores:
        folder = folder_of(store)
        if folder is not None and store.uri.startswith("file://") == absolute and path.startswith(folder + "/"):
            return store
    return None


def _where(store: Store) -> str:
    return f"{store.name} ({store.uri})"


def check_stores(catalog: Catalog) -> Iterator[Problem]:
    """The declared stores: each URI supported, distinct locations, exactly one default, and every
    version's artifact URI in one of them. Nothing when ``stores:`` is absent."""
    if catalog.stores is None:
        return
    stores = [(i, s) for i, s in enumerate(catalog.stores) if s is not None]
    usable = []
    seen: dict[str, str] = {}
    for i, store in stores:
        wrong = _problem_with(store.uri)
        if wrong:
            yield Problem(
                "store.unsupported-uri",
                f"store {store.name!r}: {wrong}",
                loc=("stores", i, "uri"),
                hint=f"a store is {_SUPPORTED}",
            )
            continue
        usable.append(store)
        location = folder_of(store) or store.uri.rstrip("/")
        if location in seen:
            yield Problem(
                "store.duplicate-uri",
                f"store {store.name!r} is the same place as store {seen[location]!r}",
                loc=("stores", i, "uri"),
                hint="declare each store once",
            )
        seen.setdefault(location, store.name)
    defaults = [(i, s) for i, s in stores if s.default]
    if not defaults:
        yield Problem(
            "store.no-default",
            "no store is the default: `modelcat register` would not know where to write",
            loc=("stores",),
            hint=f"add default: true to one store ({', '.join(s.name for _, s in stores)})",
            at_key=True,
        )
    for i, store in defaults[1:]:
        yield Problem(
            "store.several-defaults",
            f"store {store.name!r} is a default too (so is {defaults[0][1].name!r}); exactly one store is",
            loc=("stores", i, "default"),
            hint="keep default: true on one store",
        )
    if len(usable) < len(stores):
        return  # a version may lie in the store that is malformed: fix that first
    known = ", ".join(_where(s) for s in usable)
    for i, model in enumerate(catalog.models):
        for j, version in enumerate(model.versions if model is not None else []):
            artifact: Loc = ("models", i, "versions", j, "artifact")
            placed: list[tuple[Loc, str, str, str]] = [
                ((*artifact, "uri"), version.artifact.uri, "artifact.outside-stores", _REGISTER_HINT)
            ]
            if version.artifact.bundle is not None:
                placed.append(
                    ((*artifact, "bundle", "uri"), version.artifact.bundle.uri, "bundle.outside-stores", _SIGN_HINT)
                )
            for loc, uri, code, hint in placed:
                if "://" in uri and not uri.startswith(("file://", "oci://")):
                    continue  # an unsupported scheme: reported with the URI's other rules
                if store_of(usable, uri) is None:
                    yield Problem(code, f"{uri!r} lies in none of the catalog's stores ({known})", loc=loc, hint=hint)
