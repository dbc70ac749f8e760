"""The shadow step's analysis: the agreement vote proven by simulation (thousands of seeded shadow
steps looked at again and again), and the decision document read from a shadow log."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from catalog.analysis.document import dump_document
from catalog.analysis.shadow import FAIL, HOLD, PASS, SCHEMA, agreement_votes, analyze_shadow
from catalog.errors import UsageError
from catalog.feedback.logs import SegmentWriter, json_line
from catalog.layout import analytics_dir, run_dir, stack_name, state_root
from catalog.validate import load_catalog
from tests.helpers import DEMO, ROOT, shadow_step_demo, with_demo_keys

ALPHA = 0.05
ROLLOUTS = 1_000
LOOKS = 40
PER_LOOK = 100
MAX_FALSE_DECISIONS = 0.055  # alpha, and the simulation's own noise (as tests/analysis/test_sequential.py)


def _looks(rng: np.random.Generator, agreement: float, per_look: int = PER_LOOK) -> tuple[np.ndarray, np.ndarray]:
    """ROLLOUTS shadow steps, LOOKS looks each: the cumulative (agreed, compared) copies at every look."""
    agreed = np.cumsum(rng.binomial(per_look, agreement, size=(ROLLOUTS, LOOKS)), axis=1)
    compared = np.cumsum(np.full((ROLLOUTS, LOOKS), per_look), axis=1)
    return agreed, compared


@pytest.mark.parametrize("minimum", [0.95, 0.99, 0.8])
def test_an_agreement_at_its_minimum_is_rarely_voted_below_or_above_it_at_any_look(minimum: float) -> None:
    agreed, compared = _looks(np.random.default_rng(31), minimum)
    votes = agreement_votes(agreed, compared, min_agreement=minimum, alpha=ALPHA, min_samples=100)
    false_fail = (votes == FAIL).any(axis=1).mean()
    false_pass = (votes == PASS).any(axis=1).mean()
    assert false_fail <= MAX_FALSE_DECISIONS, false_fail
    assert false_pass <= MAX_FALSE_DECISIONS, false_pass


def test_a_clear_gap_is_found_on_either_side_of_the_minimum() -> None:
    rng = np.random.default_rng(32)
    worse, compared = _looks(rng, 0.90)  # a candidate that disagrees twice as often as allowed
    better, _ = _looks(rng, 0.99)
    fails = agreement_votes(worse, compared, min_agreement=0.95, alpha=ALPHA, min_samples=100)
    passes = agreement_votes(better, compared, min_agreement=0.95, alpha=ALPHA, min_samples=100)
    assert (fails[:, -1] == FAIL).mean() >= 0.99  # 4,000 copies
    assert (passes[:, -1] == PASS).mean() >= 0.99
    assert (fails == PASS).sum() == 0 and (passes == FAIL).sum() == 0
    first_fail = np.argmax(fails == FAIL, axis=1)
    assert np.median(first_fail) < LOOKS / 4  # and soon: a clear gap shows within 1,000 copies


def test_the_vote_holds_below_the_minimum_sample_and_at_the_extreme_minimums() -> None:
    assert agreement_votes(0, 99, min_agreement=0.95, alpha=ALPHA, min_samples=100) == HOLD
    assert agreement_votes(0, 100, min_agreement=0.95, alpha=ALPHA, min_samples=100) == FAIL
    assert agreement_votes(10_000, 10_000, min_agreement=1.0, alpha=ALPHA, min_samples=100) == HOLD  # never proven
    assert agreement_votes(9_999, 10_000, min_agreement=1.0, alpha=ALPHA, min_samples=100) == FAIL
    assert agreement_votes(0, 100, min_agreement=0.0, alpha=ALPHA, min_samples=100) == PASS


# --- the decision document, from a shadow log --------------------------------------------------------


def _catalog(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "models.yaml"
    path.write_text(shadow_step_demo("{percent: 20, min_agreement: 0.9, max_abs_difference: 0.02}"))
    with_demo_keys(tmp_path)
    return path


def _log(catalog_path: Path, copies: list[tuple[str, int]], start: datetime) -> None:
    """The checkout's shadow log: per (result, how many), lines a millisecond apart from ``start``."""
    folder = analytics_dir(run_dir(state_root(catalog_path), stack_name("production", "local")))
    writer = SegmentWriter(folder, "shadow", "checkout")
    n = 0
    for result, count in copies:
        for _ in range(count):
            time = (start + timedelta(milliseconds=n)).isoformat(timespec="microseconds").replace("+00:00", "Z")
            agree = {"agree": True, "disagree": False}.get(result)
            line: dict[str, Any] = {
                "time": time,
                "request_id": f"r{n}",
                "application": "checkout",
                "model": "fraud-scorer",
                "live_version": "1.3.0",
                "mirrored_version": "1.4.0",
                "result": result,
                "agree": agree,
                "outputs": None if agree is None else {"probability": agree},
                "status": 200 if agree is not None else 503,
                "latency_ms": 4.0 + (n % 10),
                "error": None if agree is not None else "no replica is reachable",
            }
            writer.append(json_line(line), time[:10])
            n += 1
    writer.close()


def _analyze(
    path: Path, version: str = "1.4.0", since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    catalog = load_catalog(path)
    app = next(a for a in catalog.applications if a.name == "checkout")
    binding = next(b for b in app.bindings if b.model == "fraud-scorer")
    return analyze_shadow(catalog, path, app, binding, version, "local", since, until)


def test_the_shadow_document_promotes_a_candidate_that_agrees_and_is_healthy(tmp_path: Path) -> None:
    path = _catalog(tmp_path)
    start = datetime.now(UTC) - timedelta(minutes=10)
    _log(path, [("agree", 1_990), ("disagree", 10), ("dropped", 7)], start)
    since, until = start - timedelta(seconds=1), start + timedelta(minutes=1)
    document = _analyze(path, since=since, until=until)
    assert dump_document(document) == dump_document(_analyze(path, since=since, until=until))  # the same bytes
    assert (document["ok"], document["schema"]) == (True, SCHEMA)
    assert document["plan"] == {
        "mirrored_version": "1.4.0",
        "percent": 20,
        "min_agreement": 0.9,
        "max_abs_difference": 0.02,
        "guardrails": {"max_error_rate": 0.01, "max_p99_latency_ms": 250},
        "min_samples": 500,
        "alpha": 0.05,
    }
    counts = document["counts"]
    assert (counts["copies"], counts["compared"], counts["agreed"], counts["errors"], counts["dropped"]) == (
        2_000,
        2_000,
        1_990,
        0,
        7,
    )
    assert counts["outputs"] == {"probability": {"agreed": 1_990, "compared": 2_000}}
    assert counts["live_versions"] == {"1.3.0": 2_007}
    assert counts["over_latency_limit"] == 0 and counts["latency_ms"]["p99"] == pytest.approx(13.0)
    (candidate,) = document["versions"]
    assert (candidate["version"], candidate["role"], candidate["verdict"]) == ("1.4.0", "candidate", "promote")
    assert [(m["name"], m["vote"]) for m in candidate["metrics"]] == [
        ("agreement", "pass"),
        ("error_rate", "pass"),
        ("p99_latency", "pass"),
    ]


def test_a_candidate_that_disagrees_or_fails_is_rolled_back_and_a_young_shadow_step_holds(tmp_path: Path) -> None:
    path = _catalog(tmp_path / "disagrees")
    start = datetime.now(UTC) - timedelta(minutes=10)
    _log(path, [("agree", 700), ("disagree", 300)], start)
    (candidate,) = _analyze(path)["versions"]
    assert candidate["verdict"] == "rollback"
    assert candidate["reasons"][0].startswith("agreement is below its minimum: 70.00% of 1,000 compared copies agree")

    path = _catalog(tmp_path / "fails")
    _log(path, [("agree", 1_000), ("error", 100)], start)
    (candidate,) = _analyze(path)["versions"]
    assert candidate["verdict"] == "rollback"
    assert [m["vote"] for m in candidate["metrics"]] == ["pass", "fail", "pass"]
    assert candidate["reasons"][0].startswith("error_rate shows harm")

    path = _catalog(tmp_path / "young")
    _log(path, [("agree", 120)], start)
    document = _analyze(path)
    (candidate,) = document["versions"]
    assert candidate["verdict"] == "hold"
    assert "120 compared copies of the 500 needed" in candidate["reasons"][0]
    empty = _analyze(_catalog(tmp_path / "empty"))
    assert empty["versions"][0]["verdict"] == "hold" and empty["counts"]["copies"] == 0
    assert empty["versions"][0]["reasons"][0] == "agreement: no data: no copy of a request to 1.4.0 was compared yet"


def test_a_version_the_model_lacks_is_refused_naming_the_versions(tmp_path: Path) -> None:
    with pytest.raises(
        UsageError, match=r"model 'fraud-scorer' has no version 9.9.9 \(versions: 1.2.0, 1.3.0, 1.4.0\)"
    ):
        _analyze(_catalog(tmp_path), "9.9.9")


def test_analyze_shows_the_shadow_step_while_the_binding_mirrors(cli, tmp_path: Path, monkeypatch) -> None:
    from catalog.analysis import run
    from tests.analysis.test_analyze_command import built

    monkeypatch.setattr(run, "analyze", lambda *args: built())  # the A/B part has its own tests
    path = _catalog(tmp_path)
    shutil.copytree(ROOT / "artifacts", tmp_path / "artifacts")
    _log(path, [("agree", 600), ("disagree", 200)], datetime.now(UTC) - timedelta(minutes=10))
    result = cli("analyze", "checkout", "--catalog", str(path), "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    schema = json.loads((ROOT / "schemas" / "analysis.schema.json").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(document)) == []
    shadow = document["shadow"]
    assert (shadow["schema"], shadow["counts"]["agreed"], shadow["versions"][0]["verdict"]) == (SCHEMA, 600, "rollback")
    text = cli("analyze", "checkout", "--catalog", str(path)).stdout
    assert (
        "shadow step: 1.4.0 mirrored (20 % of requests), agreement at least 90%, scores within 0.02: ROLLBACK" in text
    )
    assert "copies: 800 sent (600 agree, 200 disagree, 0 failed), 0 dropped; agreement 75%" in text
    markdown = cli("analyze", "checkout", "--catalog", str(path), "--format", "markdown").stdout
    assert "- **1.4.0** (shadow step): **ROLLBACK**" in markdown

    unmirrored = cli("analyze", "checkout", "--catalog", str(DEMO), "--format", "json")
    assert "shadow" not in json.loads(unmirrored.stdout)  # no mirror in force: no shadow section
