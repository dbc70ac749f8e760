"""Reading the small YAML files of policies/ (settings, waivers, fixture expectations) with positions."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from catalog.domain.problems import Problem, display_path, sort_key
from catalog.errors import PolicyConfigInvalid, PolicyError
from catalog.yamlio.loader import parse
from catalog.yamlio.positions import locate

__all__ = ["load_model", "load_yaml", "problem_position"]

M = TypeVar("M", bound=BaseModel)


def load_yaml(path: Path, error: type[PolicyError] = PolicyConfigInvalid) -> tuple[str, object]:
    """The file's text and its YAML 1.2 core data; ``error`` (with every YAML error) when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read: {e}", str(path)) from e
    parsed = parse(text, str(path))
    errors = [p for p in parsed.problems if p.severity == "error"]
    if errors:
        raise error.of_problems(str(path), errors)
    return text, parsed.data


def load_model(path: Path, model: type[M], error: type[PolicyError] = PolicyConfigInvalid) -> tuple[str, M]:
    """The file's text and its data validated by ``model`` (an empty file: the model's defaults).

    A file that does not validate raises ``error`` with every problem, each at its line and column
    and named by its field path, as validate reports a catalog's.
    """
    text, document = load_yaml(path, error)
    try:
        return text, model.model_validate(document if document is not None else {})
    except ValidationError as e:
        found = [(tuple(err["loc"]), err) for err in e.errors(include_url=False)]
        positions = locate(text, {loc for loc, _ in found})
        problems = [
            Problem(
                f"schema.{err['type']}",
                err["msg"],
                loc=loc,
                path=display_path(loc, document),
                file=str(path),
                line=positions[loc].line if loc in positions else 1,
                column=positions[loc].column if loc in positions else 1,
            )
            for loc, err in found
        ]
        raise error.of_problems(str(path), sorted(problems, key=sort_key)) from e


def problem_position(text: str, loc: tuple[str | int, ...]) -> tuple[int, int]:
    """Line and column of ``loc`` in the YAML ``text`` (its nearest existing parent when missing)."""
    position = locate(text, [loc]).get(loc)
    return (position.line, position.column) if position is not None else (1, 1)
