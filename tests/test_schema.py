"""The committed JSON Schema is what the pydantic models generate, and it agrees with them."""

from __future__ import annotations

import json

from catalog.schema import render_schema, schema_drift
from catalog.yamlio.loader import parse
from tests.helpers import DEMO, MINIMAL, ROOT, json_schema_validator

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


def test_demo_catalog_passes_the_json_schema():
    data = parse(DEMO.read_text(encoding="utf-8"), "models.yaml").data
    assert list(json_schema_validator().iter_errors(data)) == []


def test_models_yaml_carries_the_schema_modeline():
    first = DEMO.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./schemas/catalog.schema.json"


def test_minimal_fixture_passes_the_json_schema():
    assert list(json_schema_validator().iter_errors(parse(MINIMAL, "m.yaml").data)) == []
