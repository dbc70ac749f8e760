"""`modelcat analyze`: finding the binding (with did-you-mean), the period's options, each format,
--output and --fail-on. The gathering (warehouse, telemetry, statistics) is replaced by a document
built from hand-made values here: its parts have their own tests."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from catalog.analysis import run
from catalog.analysis.document import analysis_document, dump_document
from catalog.cli.analyze_command import parse_instant
from catalog.errors import UsageError
from catalog.validate import validate_file
from tests.analysis.helpers import DECISION, LOOKS, OBSERVATIONS, OFFLINE, PLAN
from tests.helpers import DEMO, ROOT, with_demo_keys

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def built(decision=DECISION) -> dict[str, Any]:
    return analysis_document(PLAN, OBSERVATIONS, decision, offline_metrics=OFFLINE, looks=LOOKS)


@pytest.fixture
def gathered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """``run.analyze`` answers the hand-made document; the calls it got are recorded."""
    calls: list[tuple[Any, ...]] = []

    def fake(catalog, path, app, binding, target, since, until):
        calls.append((app.name, binding.model, target, since, until))
        return built()

    monkeypatch.setattr(run, "analyze", fake)
    return calls


def test_an_unknown_application_is_a_usage_error_with_the_closest_name(cli):
    result = cli("analyze", "storefrnt", "--catalog", DEMO)
    assert result.exit_code == 2
    assert "no application 'storefrnt'" in result.stderr and "did you mean 'storefront'?" in result.stderr
    as_json = json.loads(cli("analyze", "storefrnt", "--catalog", DEMO, "--format", "json").stdout)
    assert as_json["ok"] is False and as_json["error"]["code"] == "usage"
    assert "did you mean 'storefront'?" in as_json["error"]["message"]


def test_an_unknown_model_or_an_ambiguous_one_is_a_usage_error(cli, tmp_path: Path):
    wrong = cli("analyze", "storefront", "--model", "recomender", "--catalog", DEMO)
    assert wrong.exit_code == 2 and "did you mean 'recommender'?" in wrong.stderr
    text = Path(DEMO).read_text(encoding="utf-8")
    ranker = "          target_concurrency: 16\n"  # the storefront's search-ranker binding, which compares nothing
    assert text.count(ranker) == 1
    two = tmp_path / "models.yaml"
    two.write_text(text.replace(ranker, ranker + "        analysis: {min_samples_per_arm: 500}\n"), encoding="utf-8")
    shutil.copytree(ROOT / "artifacts", tmp_path / "artifacts")
    with_demo_keys(tmp_path)
    ambiguous = cli("analyze", "storefront", "--catalog", str(two))
    assert ambiguous.exit_code == 2, ambiguous.stderr
    assert "2 of them compare versions: recommender, search-ranker; choose one with --model" in ambiguous.stderr
    elsewhere = cli("analyze", "checkout", "--env", "staging", "--catalog", DEMO)
    assert elsewhere.exit_code == 2 and "runs in environment 'production', not 'staging'" in elsewhere.stderr


def test_since_takes_rfc_3339_or_a_duration_back_from_now():
    assert parse_instant("--since", "24h", NOW) == NOW - timedelta(hours=24)
    assert parse_instant("--since", "7d", NOW) == NOW - timedelta(days=7)
    assert parse_instant("--since", "90m", NOW) == NOW - timedelta(minutes=90)
    assert parse_instant("--since", "2026-12-01T08:00:00Z", NOW) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert parse_instant("--since", "2026-12-01", NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_instant("--until", None, NOW) is None
    with pytest.raises(UsageError, match="neither an RFC 3339 time"):
        parse_instant("--since", "yesterday", NOW)


def test_a_period_that_ends_before_it_starts_is_a_usage_error(cli, gathered):
    result = cli("analyze", "checkout", "--since", "2026-12-02", "--until", "2026-12-01", "--catalog", DEMO)
    assert result.exit_code == 2 and "is not before --until" in result.stderr
    assert gathered == []


def test_analyze_passes_the_binding_and_the_period_to_the_gathering(cli, gathered):
    result = cli("analyze", "checkout", "--since", "2026-12-01T00:00:00Z", "--until", "2026-12-04", "--catalog", DEMO)
    assert result.exit_code == 0, result.output
    assert gathered == [
        ("checkout", "fraud-scorer", "local", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("text", "2.2.0 against 2.1.0: PROMOTE"),
        ("markdown", "- **2.2.0**: **PROMOTE**"),
        ("html", "<!doctype html>"),
    ],
)
def test_each_format_prints_its_rendering(cli, gathered, fmt: str, expected: str):
    result = cli("analyze", "checkout", "--catalog", DEMO, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert expected in result.stdout


def test_the_json_format_is_the_decision_document_with_ok_true_and_the_same_bytes_each_time(cli, gathered):
    first = cli("analyze", "checkout", "--catalog", DEMO, "--format", "json")
    second = cli("analyze", "checkout", "--catalog", DEMO, "--format", "json")
    assert first.exit_code == 0 and first.stdout == second.stdout == dump_document(built())
    document = json.loads(first.stdout)
    assert document["ok"] is True and document["schema"] == "modelcat/analysis-v1" and "error" not in document


def test_output_writes_the_report_to_a_file_and_says_so(cli, gathered, tmp_path: Path):
    page = tmp_path / "report.html"
    result = cli("analyze", "checkout", "--catalog", DEMO, "--format", "html", "--output", page)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {page} (fraud-scorer in checkout: 2.2.0 promote)\n"
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    as_json = tmp_path / "report.json"
    result = cli("analyze", "checkout", "--catalog", DEMO, "--format", "json", "--output", as_json)
    assert json.loads(result.stdout)["ok"] is True and as_json.read_text(encoding="utf-8") == result.stdout


def test_fail_on_rollback_exits_1_with_ok_false_when_a_version_is_rolled_back(cli, monkeypatch):
    rolled_back = replace(DECISION, versions=(replace(DECISION.versions[0], verdict="rollback"),))
    monkeypatch.setattr(run, "analyze", lambda *args: built(rolled_back))
    plain = cli("analyze", "checkout", "--catalog", DEMO, "--format", "json")
    assert plain.exit_code == 0 and json.loads(plain.stdout)["ok"] is True
    refused = cli("analyze", "checkout", "--catalog", DEMO, "--format", "json", "--fail-on", "rollback")
    assert refused.exit_code == 1
    document = json.loads(refused.stdout)
    assert document["ok"] is False and document["versions"][1]["verdict"] == "rollback"
    assert document["error"]["code"] == "verdict_rollback"
    assert document["error"]["message"] == "storefront/recommender: 2.2.0 rollback (--fail-on rollback)"
    schema = json.loads((ROOT / "schemas" / "analysis.schema.json").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(document)) == []
    text = cli("analyze", "checkout", "--catalog", DEMO, "--fail-on", "hold")
    assert text.exit_code == 1 and "2.2.0 against 2.1.0: ROLLBACK" in text.stdout
    assert "error: storefront/recommender: 2.2.0 rollback (--fail-on hold)" in text.stderr


def test_fail_on_hold_lets_a_promote_pass(cli, gathered):
    assert cli("analyze", "checkout", "--catalog", DEMO, "--fail-on", "hold").exit_code == 0


def test_without_model_the_one_binding_that_compares_versions_is_analyzed(gathered):
    catalog = validate_file(Path(DEMO)).raise_for_errors()
    app, binding = run.find_binding(catalog, Path(DEMO), "storefront", None, None)
    assert (app.name, binding.model) == ("storefront", "recommender")  # search-ranker routes one version
