"""Add many resources to a stack without sending their bodies through jsii.

Each construct created through jsii costs a round trip to Node (about 1.5-2 ms with its
attributes here), and even one ``add_override`` per resource type is slow for large bodies:
jsii converts the value node by node (cattrs), sends it as JSON, Node merges it into the
construct tree and resolves it again at synth (measured: 5.4 s of overrides plus 1.4 s of synth
for the 14 MB of 1,000 Kubernetes endpoints). So resource bodies are built as plain, typed Python
values. Inside ``deferred_bodies()`` (what ``synthesize`` uses) each resource type gets one
``add_override`` of a short placeholder string, and after ``app.synth()`` ``write_pending`` puts
the bodies in place of the placeholders in the stack's ``cdk.tf.json`` and writes it back
formatted exactly as cdktn formats it (keys sorted at every level, ``JSON.stringify`` with an
indent of 2, which ``orjson``'s ``OPT_INDENT_2 | OPT_SORT_KEYS`` and ``json.dumps(indent=2,
sort_keys=True, ensure_ascii=False)`` reproduce byte for byte for the integers, strings, booleans,
lists and maps with ASCII keys that bodies hold; a test compares both paths). Outside it,
or with ``MODELCAT_SYNTH_EMIT=override``, the bodies go through jsii in one ``add_override`` per
resource type. Terraform references are written as ``${type.id.attr}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["PLACEHOLDER", "add_outputs", "add_resources", "deferred_bodies", "dumps", "reference", "write_pending"]

PLACEHOLDER = "modelcat:resource-bodies:"
# id(stack) -> (stack, {type: bodies}) while deferred_bodies() is active, else None
_pending: dict[int, tuple[Any, dict[str, dict[str, Any]]]] | None = None


def reference(kind: str, resource_id: str, attribute: str) -> str:
    """A Terraform expression naming another resource's attribute."""
    return f"${{{kind}.{resource_id}.{attribute}}}"


@contextmanager
def deferred_bodies() -> Iterator[None]:
    """Within: ``add_resources`` keeps bodies for ``write_pending`` (unless MODELCAT_SYNTH_EMIT=override)."""
    global _pending
    previous, _pending = _pending, ({} if os.environ.get("MODELCAT_SYNTH_EMIT") != "override" else None)
    try:
        yield
    finally:
        _pending = previous


def add_resources(stack: Any, kind: str, bodies: Mapping[str, Mapping[str, Any]]) -> None:
    """Put ``{id: body}`` of resource type ``kind`` into ``stack`` (ids sorted)."""
    if not bodies:
        return
    ordered = {key: bodies[key] for key in sorted(bodies)}
    if _pending is None:
        stack.add_override(f"resource.{kind}", {key: dict(body) for key, body in ordered.items()})
        return
    stack.add_override(f"resource.{kind}", PLACEHOLDER + kind)
    _pending.setdefault(id(stack), (stack, {}))[1][kind] = ordered


def add_outputs(stack: Any, outputs: Mapping[str, Mapping[str, Any]]) -> None:
    if outputs:
        stack.add_override("output", {key: dict(outputs[key]) for key in sorted(outputs)})


def dumps(document: Any) -> bytes:
    """``document`` as cdktn writes a stack: keys sorted, ``JSON.stringify(document, null, 2)``, UTF-8."""
    try:
        import orjson
    except ImportError:  # the same bytes, slower (the pure-Python encoder: indent disables the C one)
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode()
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def write_pending(stack: Any, path: Path) -> None:
    """After ``app.synth()``: the bodies ``add_resources`` kept for ``stack`` into its ``cdk.tf.json``."""
    entry = _pending.pop(id(stack), None) if _pending is not None else None
    if entry is None:
        return
    document = json.loads(path.read_bytes())
    resources = document["resource"]
    for kind, bodies in entry[1].items():
        if resources.get(kind) != PLACEHOLDER + kind:
            raise RuntimeError(f"{path}: resource.{kind} is not the placeholder modelcat wrote")
        resources[kind] = bodies
    path.write_bytes(dumps(document))
