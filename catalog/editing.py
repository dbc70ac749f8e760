"""Edits of models.yaml: round-trip, validated before they are written, written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from catalog.errors import EditRefused
from catalog.validate import read_catalog_bytes, validate_bytes
from catalog.yamlio.loader import decode
from catalog.yamlio.roundtrip import RoundTrip, atomic_write

__all__ = ["BindResult", "bind_routes"]


@dataclass(frozen=True)
class BindResult:
    application: str
    model: str
    before: tuple[tuple[str, int], ...]  # empty when the binding is new
    after: tuple[tuple[str, int], ...]
    changed: bool


def _find(seq: object, key: str, value: str) -> CommentedMap | None:
    if isinstance(seq, list):
        for item in seq:
            if isinstance(item, dict) and item.get(key) == value:
                return item
    return None


def bind_routes(
    path: str | os.PathLike[str], application: str, model: str, routes: Sequence[tuple[str, int]]
) -> BindResult:
    """Set ``application``'s routes for ``model`` (adding the binding if it has none)."""
    path = Path(path)
    original = read_catalog_bytes(path)
    text, problems = decode(original, str(path))
    if problems:
        raise EditRefused(f"{path} is not UTF-8", problems, str(path))
    edit = RoundTrip(text, str(path))
    document = edit.document
    apps = document.get("applications") if isinstance(document, dict) else None
    app = _find(apps, "name", application)
    if app is None:
        names = [a.get("name") for a in apps or [] if isinstance(a, dict)]
        listed = ", ".join(map(str, names)) or "none"
        raise EditRefused(f"no application {application!r} in {path} (applications: {listed})", path=str(path))
    bindings = app.get("bindings")
    if not isinstance(bindings, list):
        raise EditRefused(f"application {application!r} has no bindings list", path=str(path))
    binding = _find(bindings, "model", model)
    before: tuple[tuple[str, int], ...] = ()
    if binding is None:
        binding = CommentedMap([("model", model), ("routes", CommentedSeq())])
        bindings.append(binding)
    else:
        old = binding.get("routes")
        if isinstance(old, list):
            before = tuple((str(r.get("version")), r.get("weight")) for r in old if isinstance(r, dict))
    binding["routes"] = _new_routes(binding.get("routes"), routes, style=binding.get("routes") or _any_routes(apps))
    after = tuple((v, w) for v, w in routes)
    new_text = edit.dump()
    report = validate_bytes(new_text.encode("utf-8"), str(path))
    if report.errors:
        raise EditRefused(f"the edit would leave {path} invalid", report.errors, str(path))
    changed = new_text.encode("utf-8") != original
    if changed:
        atomic_write(path, new_text.encode("utf-8"))
    return BindResult(application, model, before, after, changed)


def _any_routes(apps: list[object]) -> object:
    """Some existing routes list, to copy its style for a new binding."""
    for app in apps:
        for binding in app.get("bindings") or [] if isinstance(app, dict) else []:
            if isinstance(binding, dict) and binding.get("routes"):
                return binding["routes"]
    return None


def _new_routes(current: object, routes: Sequence[tuple[str, int]], style: object) -> CommentedSeq:
    """The new routes list. An existing entry of the same version is kept and only its weight set
    (its comments survive); new entries take the flow or block style of ``style``'s entries."""
    existing = (
        {str(r.get("version")): r for r in current if isinstance(r, CommentedMap)} if isinstance(current, list) else {}
    )
    flow_items = isinstance(style, list) and any(isinstance(r, CommentedMap) and r.fa.flow_style() for r in style)
    result = current if isinstance(current, CommentedSeq) else CommentedSeq()
    items = []
    for version, weight in routes:
        item = existing.get(version)
        if item is None:
            item = CommentedMap([("version", version), ("weight", weight)])
            if flow_items:
                item.fa.set_flow_style()
        else:
            item["weight"] = weight
        items.append(item)
    result[:] = items
    return result
