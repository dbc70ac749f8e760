"""Find where a field path sits in the YAML text, only when a problem must be reported."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from catalog.domain.problems import Loc
from catalog.yamlio.loader import MERGE, compose

__all__ = ["Position", "locate"]


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based
    key_line: int  # where the key naming the last step is (same as line for list items)
    key_column: int
    found: bool  # False: the path stops early (e.g. a missing field); the position is its parent's
    source: str | None  # the scalar's text as written, when the node is a scalar
    quoted: bool


def _pairs(node: MappingNode) -> Iterable[tuple[Node, Node]]:
    """Key/value pairs, explicit ones first, then those brought in by ``<<`` merges."""
    merged: list[tuple[Node, Node]] = []
    for key, value in node.value:
        if key.tag == MERGE:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                if isinstance(source, MappingNode):
                    merged.extend(_pairs(source))
        else:
            yield key, value
    yield from merged


def _child(node: Node, step: str | int) -> tuple[Node, Node] | None:
    if isinstance(node, MappingNode):
        for key, value in _pairs(node):
            if isinstance(key, ScalarNode) and (key.value == step or key.value == str(step)):
                return key, value
    elif isinstance(node, SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
        item = node.value[step]
        return item, item
    return None


def _position(node: Node, key: Node, found: bool) -> Position:
    source = node.value if isinstance(node, ScalarNode) else None
    quoted = isinstance(node, ScalarNode) and node.style in ("'", '"')
    return Position(
        node.start_mark.line + 1,
        node.start_mark.column + 1,
        key.start_mark.line + 1,
        key.start_mark.column + 1,
        found,
        source,
        quoted,
    )


def locate(text: str, locs: Iterable[Loc]) -> dict[Loc, Position]:
    """Positions for each path; paths into a document that does not compose are left out."""
    root = compose(text)
    if root is None:
        return {}
    found: dict[Loc, Position] = {}
    for loc in locs:
        node, key, complete = root, root, True
        for step in loc:
            child = _child(node, step)
            if child is None:
                complete = False
                break
            key, node = child
        found[loc] = _position(node, key, complete)
    return found
