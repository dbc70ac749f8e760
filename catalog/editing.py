"""Edits of models.yaml: round-trip, validated before they are written, written atomically.

Every writer of the catalog edits it under its lock (``locked_catalog``): read, change and write
happen while ``.models.yaml.lock`` beside it is held, so two modelcat commands never lose each
other's change; a second writer waits for the first (``MODELCAT_LOCK_TIMEOUT`` seconds, 30 by
default) and then gives up with CatalogLocked. The lock file is removed when the lock is
released (see ``catalog.filelock`` for why that is safe): a repository shows no stray file and
needs no .gitignore line. Programs that do not take the lock (an editor) are caught by comparing
the file's content with what was read, just before the rename.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from catalog import filelock
from catalog.errors import CatalogLocked, DiskFull, EditRefused, UsageError
from catalog.files import atomic_write
from catalog.validate import read_catalog_bytes, validate_bytes
from catalog.yamlio.loader import decode
from catalog.yamlio.roundtrip import RoundTrip

__all__ = [
    "KEEP_MIRROR",
    "LOCK_TIMEOUT_ENV",
    "BindResult",
    "LockedCatalog",
    "append_entry",
    "bind_routes",
    "lock_path",
    "locked_catalog",
    "routes_edited",
    "set_entry",
]

LOCK_TIMEOUT_ENV = "MODELCAT_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 30.0  # seconds a writer waits for another one
KEEP_MIRROR = object()  # routes_edited: leave the binding's mirror as it is


@dataclass
class LockedCatalog:
    """The catalog held for one read-modify-write; ``original`` was read under the lock."""

    path: Path
    original: bytes

    def write(self, data: bytes) -> bool:
        """Replace the file with ``data`` unless it is unchanged; whether it was written."""
        if data == self.original:
            return False
        atomic_write(self.path, data, expected=self.original)
        return True


def lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "")
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise UsageError(f"{LOCK_TIMEOUT_ENV}={raw!r}: write a number of seconds, e.g. 30")
    return value


@contextmanager
def locked_catalog(path: str | os.PathLike[str], timeout: float | None = None) -> Iterator[LockedCatalog]:
    """Hold the catalog's write lock and read it: the one way modelcat writes models.yaml."""
    path = Path(path)
    wait = _timeout() if timeout is None else timeout
    where = lock_path(path)
    try:
        with DiskFull.translating(where):
            fd = filelock.lock(where, wait)
    except OSError as e:
        read_catalog_bytes(path)  # a missing folder: say that the catalog is missing
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise EditRefused(f"cannot write in the folder of {path}: {e.strerror}", path=str(path)) from e
        raise
    if fd is None:
        raise CatalogLocked(str(path), filelock.holder_pid(where), wait)
    try:
        yield LockedCatalog(path, read_catalog_bytes(path))
    finally:
        filelock.unlock(fd, where, remove=True)


@dataclass(frozen=True)
class BindResult:
    application: str
    model: str
    before: tuple[tuple[str, object], ...]  # as the catalog had them (not validated); empty when the binding is new
    after: tuple[tuple[str, int], ...]
    changed: bool


def _find(seq: object, key: str, value: str) -> dict[str, Any] | None:
    if isinstance(seq, list):
        for item in seq:
            if isinstance(item, dict) and item.get(key) == value:
                return item
    return None


def bind_routes(
    path: str | os.PathLike[str], application: str, model: str, routes: Sequence[tuple[str, int]]
) -> BindResult:
    """Set ``application``'s routes for ``model`` (adding the binding if it has none)."""
    with locked_catalog(path) as catalog:
        new_text, before = routes_edited(catalog, application, model, routes)
        changed = catalog.write(new_text.encode("utf-8"))
    return BindResult(application, model, before, tuple((v, w) for v, w in routes), changed)


def routes_edited(
    catalog: LockedCatalog,
    application: str,
    model: str,
    routes: Sequence[tuple[str, int]],
    mirror: tuple[str, int] | None | object = KEEP_MIRROR,
) -> tuple[str, tuple[tuple[str, object], ...]]:
    """The catalog's new text with the routes set (and the binding's ``mirror`` set to
    ``(version, percent)``, removed with None, left as it is by default), validated; and the routes
    it had before. Nothing is written: the caller writes the text (or commits it)."""
    path = catalog.path
    text, problems = decode(catalog.original, str(path))
    if problems:
        raise EditRefused(f"{path} is not UTF-8", problems, str(path))
    edit = RoundTrip(text, str(path))
    document = edit.document
    declared = document.get("applications") if isinstance(document, dict) else None
    apps: list[object] = declared if isinstance(declared, list) else []
    app = _find(apps, "name", application)
    if app is None:
        names = [a.get("name") for a in apps if isinstance(a, dict)]
        listed = ", ".join(map(str, names)) or "none"
        raise EditRefused(f"no application {application!r} in {path} (applications: {listed})", path=str(path))
    bindings = app.get("bindings")
    if not isinstance(bindings, list):
        raise EditRefused(f"application {application!r} has no bindings list", path=str(path))
    binding = _find(bindings, "model", model)
    before: tuple[tuple[str, object], ...] = ()
    if binding is None:
        binding = CommentedMap([("model", model), ("routes", CommentedSeq())])
        bindings.append(binding)
    else:
        old = binding.get("routes")
        if isinstance(old, list):
            before = tuple((str(r.get("version")), r.get("weight")) for r in old if isinstance(r, dict))
    binding["routes"] = _new_routes(binding.get("routes"), routes, style=binding.get("routes") or _any_routes(apps))
    if mirror is None:
        binding.pop("mirror", None)
    elif isinstance(mirror, tuple):
        version, percent = mirror
        value = CommentedMap([("version", version), ("percent", percent)])
        value.fa.set_flow_style()
        binding["mirror"] = value
    new_text = edit.dump()
    report = validate_bytes(new_text.encode("utf-8"), str(path))
    if report.errors:
        raise EditRefused(f"the edit would leave {path} invalid", report.errors, str(path))
    return new_text, before


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


def _last_line(node: object) -> tuple[CommentedMap | CommentedSeq, Any] | None:
    """The innermost block collection and key holding ``node``'s last line, where ruamel keeps the
    comments and blank lines that follow it (None when ``node`` ends in a flow collection)."""
    while isinstance(node, CommentedMap | CommentedSeq) and len(node) and not node.fa.flow_style():
        key = next(reversed(node)) if isinstance(node, CommentedMap) else len(node) - 1
        value = node[key]
        if not (isinstance(value, CommentedMap | CommentedSeq) and len(value) and not value.fa.flow_style()):
            return node, key
        node = value
    return None


def _following(node: object, cut: bool = False) -> str:
    """What follows ``node``'s last line and its end-of-line comment: blank lines, comment lines.
    ``cut`` removes it from ``node`` (its end-of-line comment stays)."""
    where = _last_line(node)
    if where is None:
        return ""
    container, key = where
    slot = 2 if isinstance(container, CommentedMap) else 0
    entry = container.ca.items.get(key)
    token = entry[slot] if entry and len(entry) > slot else None
    if token is None:
        return ""
    value: str = token.value  # a comment token's text
    line_end, _, rest = value.partition("\n")
    if cut:
        if line_end.strip():
            token.value = line_end + "\n"
        else:
            entry[slot] = None
    return rest


def _set_following(node: object, text: str) -> None:
    """Put ``text`` (blank lines, comment lines) after ``node``'s last line."""
    where = _last_line(node)
    if where is None or not text:
        return
    container, key = where
    slot = 2 if isinstance(container, CommentedMap) else 0
    entry = container.ca.items.setdefault(key, [None] * (4 if slot == 2 else 2))
    token = entry[slot]
    if token is None:
        entry[slot] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        token.value = token.value.rstrip("\n") + "\n" + text if token.value.strip() else "\n" + text


def append_entry(seq: CommentedSeq, item: object) -> None:
    """Append ``item`` to a block sequence in its layout: what followed the old last entry (blank
    lines, comments before the next key) now follows ``item``, and the old last entry is set off
    from ``item`` by the blank lines that set it off from the one before."""
    if not seq:
        seq.append(item)
        return
    between = _following(seq[-2]) if len(seq) > 1 else ""
    after = _following(seq[-1], cut=True)
    _set_following(seq[-1], between if not between.strip() else "")
    seq.append(item)
    _set_following(seq[-1], after)


def set_entry(mapping: CommentedMap, key: str, value: object) -> None:
    """Set ``mapping[key]`` in the mapping's layout: what followed its last line (blank lines,
    comments before the next key) still follows it, also when ``key`` is new or was the last."""
    after = _following(mapping, cut=True)
    mapping[key] = value
    _set_following(mapping, after)
