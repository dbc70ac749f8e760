"""``modelcat feedback import``: a file of outcome events stored whole in the application's outcome log, or not at all."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import Result

from catalog.domain.routing import key_hash
from tests.helpers import DEMO, with_demo_keys

LOG = Path(".modelcat/run/production-local/analytics/outcomes/application=storefront")


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    """The demo catalog in a folder whose production stack has a run directory (as after apply)."""
    shutil.copyfile(DEMO, tmp_path / "models.yaml")
    with_demo_keys(tmp_path)
    (tmp_path / ".modelcat" / "run" / "production-local").mkdir(parents=True)
    return tmp_path / "models.yaml"


def _events(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"event_id": f"e-{i}", "unit": f"session-{i}", "outcome": "conversion", "value": i % 2}
            for i in range(start, start + n)]  # fmt: skip


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _stored(catalog: Path) -> list[dict[str, Any]]:
    folder = catalog.parent / LOG
    return [json.loads(line) for path in sorted(folder.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def _import(cli: Callable[..., Result], catalog: Path, file: Path, *args: str) -> Result:
    return cli("feedback", "import", file, "--app", "storefront", "--catalog", catalog, *args)


def _as(fmt: str, rows: list[dict[str, Any]], tmp: Path) -> Path:
    source = _jsonl(tmp / "source.jsonl", rows)
    if fmt == "jsonl":
        return source
    target = tmp / f"events.{fmt}"
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    duckdb.sql(f"COPY (SELECT * FROM read_json('{source}')) TO '{target}' ({options})")
    return target


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_import_stores_every_event_of_a_json_lines_csv_or_parquet_file(
    cli: Callable[..., Result], applied: Path, tmp_path: Path, fmt: str
):
    file = _as(fmt, _events(3), tmp_path)
    result = _import(cli, applied, file)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{file}: 3 events stored (0 duplicates of events already stored) in ")
    stored = _stored(applied)
    assert [(e["event_id"], e["value"], e["unit_hash"]) for e in stored] == [
        ("e-0", 0.0, key_hash("session-0")),
        ("e-1", 1.0, key_hash("session-1")),
        ("e-2", 0.0, key_hash("session-2")),
    ]
    assert not any(b"session-" in p.read_bytes() for p in (applied.parent / ".modelcat").rglob("*") if p.is_file())


def test_import_counts_the_events_already_stored_as_duplicates_and_keeps_them(
    cli: Callable[..., Result], applied: Path, tmp_path: Path
):
    _import(cli, applied, _jsonl(tmp_path / "first.jsonl", _events(3)))
    result = _import(cli, applied, _jsonl(tmp_path / "again.jsonl", _events(4, start=1)), "--format", "json")
    document = json.loads(result.output)
    assert (document["ok"], document["stored"], document["duplicates"]) == (True, 4, 2)
    assert len(_stored(applied)) == 7


def test_import_of_a_file_with_bad_rows_names_each_line_and_field_and_stores_nothing(
    cli: Callable[..., Result], applied: Path, tmp_path: Path
):
    rows = _events(5)
    rows[1]["value"] = 2
    rows[3]["outcome"] = "revenue"
    file = _jsonl(tmp_path / "events.jsonl", rows)
    result = _import(cli, applied, file, "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["ok"] is False and document["error"]["code"] == "events_invalid"
    assert [(p["file"], p["line"], p["path"]) for p in document["problems"]] == [
        (str(file), 2, "value"),
        (str(file), 4, "outcome"),
    ]
    assert _stored(applied) == []


def test_import_for_an_application_the_catalog_does_not_have_is_a_usage_error(
    cli: Callable[..., Result], applied: Path, tmp_path: Path
):
    result = cli("feedback", "import", _jsonl(tmp_path / "e.jsonl", _events(1)), "--app", "shop", "--catalog", applied)
    assert result.exit_code == 2
    assert "no application 'shop'" in result.output
    assert not (applied.parent / LOG).exists()


def test_import_into_a_stack_never_applied_is_a_usage_error(cli: Callable[..., Result], tmp_path: Path):
    shutil.copyfile(DEMO, tmp_path / "models.yaml")
    with_demo_keys(tmp_path)
    result = _import(cli, tmp_path / "models.yaml", _jsonl(tmp_path / "e.jsonl", _events(1)))
    assert result.exit_code == 2
    assert "stack production-local of storefront has not been applied" in result.output


def test_import_into_another_environment_than_the_applications_is_refused(
    cli: Callable[..., Result], applied: Path, tmp_path: Path
):
    result = _import(cli, applied, _jsonl(tmp_path / "e.jsonl", _events(1)), "--env", "staging")
    assert result.exit_code == 2
    assert "storefront runs in environment 'production', not 'staging'" in result.output
