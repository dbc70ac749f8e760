"""A problem found in a catalog: what, where (field path and, once known, file position), what to do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Loc", "Problem", "Severity", "display_path", "sort_key"]

Loc = tuple[str | int, ...]
Severity = Literal["error", "warning"]

# List items are shown by their identifying field where they have one.
_ITEM_KEYS = ("name", "version")


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. ``loc`` is the raw path into the document (keys and list indices)."""

    code: str
    message: str
    loc: Loc = ()
    hint: str = ""
    severity: Severity = "error"
    path: str = ""  # display path, e.g. applications[checkout].bindings[0]
    file: str = ""
    line: int = 0  # 1-based; 0 when unknown
    column: int = 0  # 1-based
    at_key: bool = field(default=False, compare=False)  # point at the key rather than its value

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


def display_path(loc: Sequence[str | int], document: object) -> str:
    """Render ``loc`` readably, naming list items by their ``name``/``version`` where possible."""
    parts: list[str] = []
    node: object = document
    for step in loc:
        if isinstance(step, int):
            label = str(step)
            item = node[step] if isinstance(node, list) and -len(node) <= step < len(node) else None
            if isinstance(item, Mapping):
                for key in _ITEM_KEYS:
                    ident = item.get(key)
                    if isinstance(ident, str) and ident.strip() == ident and ident:
                        label = ident
                        break
            parts.append(f"[{label}]")
            node = item
        else:
            parts.append(f".{step}" if parts else str(step))
            node = node.get(step) if isinstance(node, Mapping) else None
    return "".join(parts)


def sort_key(problem: Problem) -> tuple[int, int, str, str]:
    return (problem.line or 1 << 30, problem.column, problem.path, problem.code)
