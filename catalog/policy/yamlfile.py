"""Reading the small YAML files of policies/ (settings, waivers, fixture expectations) with positions."""

from __future__ import annotations

from pathlib import Path

from catalog.errors import PolicyConfigInvalid, PolicyError
from catalog.yamlio.loader import parse
from catalog.yamlio.positions import locate

__all__ = ["load_yaml", "problem_position"]


def load_yaml(path: Path, error: type[PolicyError] = PolicyConfigInvalid) -> tuple[str, object]:
    """The file's text and its YAML 1.2 core data; ``error`` (file and line) when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read: {e}", str(path)) from e
    parsed = parse(text, str(path))
    if parsed.problems and any(p.severity == "error" for p in parsed.problems):
        first = next(p for p in parsed.problems if p.severity == "error")
        raise error(first.message, str(path), first.line, first.column)
    return text, parsed.data


def problem_position(text: str, loc: tuple[str | int, ...]) -> tuple[int, int]:
    """Line and column of ``loc`` in the YAML ``text`` (its nearest existing parent when missing)."""
    position = locate(text, [loc]).get(loc)
    return (position.line, position.column) if position is not None else (1, 1)
