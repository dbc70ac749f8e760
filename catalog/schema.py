"""The catalog's JSON Schema: generated from the pydantic models, committed, checked for drift."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from catalog.domain.models import API_VERSION, Catalog

__all__ = ["DEFAULT_SCHEMA_PATH", "catalog_schema", "render_schema", "schema_drift"]

DEFAULT_SCHEMA_PATH = Path("schemas/catalog.schema.json")
SCHEMA_ID = "https://modelcat.dev/schemas/catalog.schema.json"


def catalog_schema() -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of models.yaml; every $ref is local (#/$defs/...)."""
    body = Catalog.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"modelcat catalog ({API_VERSION})",
        "description": "models.yaml: models, their versions and artifacts, and the applications bound to them.",
        **{k: v for k, v in body.items() if k != "title"},
    }


def render_schema() -> str:
    return json.dumps(catalog_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_drift(committed: Path) -> str:
    """A unified diff from the committed schema to the generated one; empty when they agree."""
    try:
        current = committed.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    wanted = render_schema()
    if current == wanted:
        return ""
    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            fromfile=f"{committed} (committed)",
            tofile="generated from catalog/domain/models.py",
        )
    )
