"""The committed JSON Schema is what the pydantic models generate, and it agrees with them."""

from __future__ import annotations

import json

import jsonschema
import pytest
import referencing
import referencing.exceptions

from catalog.schema import catalog_schema, render_schema, schema_drift
from catalog.yamlio.loader import parse
from tests.conftest import DEMO, ROOT
from tests.test_bad_input import CASES, MINIMAL

COMMITTED = ROOT / "schemas" / "catalog.schema.json"


def test_committed_schema_has_not_drifted():
    drift = schema_drift(COMMITTED)
    assert not drift, "schemas/catalog.schema.json is stale; run `modelcat schema --write`\n" + drift


def test_schema_check_command_fails_on_drift(cli, tmp_path):
    stale = tmp_path / "catalog.schema.json"
    stale.write_text(render_schema().replace('"Semantic version', '"A version'), encoding="utf-8")
    result = cli("schema", "--check", "--path", stale)
    assert result.exit_code == 1
    assert "-  " in result.stdout or "+  " in result.stdout
    assert cli("schema", "--check", "--path", COMMITTED).exit_code == 0


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_ref_is_local():
    refs = _refs(json.loads(COMMITTED.read_text()))
    assert refs and all(ref.startswith("#/$defs/") for ref in refs)


def _no_fetch(uri: str) -> referencing.Resource:
    raise referencing.exceptions.NoSuchResource(ref=uri)


def _validator() -> jsonschema.Draft202012Validator:
    registry = referencing.Registry(retrieve=_no_fetch)
    schema = catalog_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry, format_checker=jsonschema.FormatChecker())


def test_demo_catalog_passes_the_json_schema():
    data = parse(DEMO.read_text(encoding="utf-8"), "models.yaml").data
    assert list(_validator().iter_errors(data)) == []


SCHEMA_LEVEL = [c for c in CASES if c[2].startswith("schema.")]


@pytest.mark.parametrize("text", [c[1] for c in SCHEMA_LEVEL], ids=[c[0] for c in SCHEMA_LEVEL])
def test_json_schema_rejects_what_the_models_reject(text):
    """Editors using the schema see the same schema-level mistakes modelcat reports."""
    data = parse(text, "models.yaml").data
    assert list(_validator().iter_errors(data)), "the JSON Schema accepted a catalog the models reject"


def test_models_yaml_carries_the_schema_modeline():
    first = DEMO.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./schemas/catalog.schema.json"


def test_minimal_fixture_passes_the_json_schema():
    assert list(_validator().iter_errors(parse(MINIMAL, "m.yaml").data)) == []
