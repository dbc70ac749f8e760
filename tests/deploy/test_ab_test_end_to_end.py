"""An A/B test from declaration to verdict, as `make demo` runs it: a catalog that declares an outcome
and what to compare, a real apply (replicas, router, Prometheus), simulated users through the router
(bench/demo_users.py: keyed requests, then their conversions posted to POST /v2/feedback), and
`modelcat analyze`'s decision document; and labels drawn from the scores the real replicas answered,
whose live AUC analyze and show put beside the offline one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.project import ROOT, Project, output

pytestmark = pytest.mark.slow

DECLARED = """\
    outcomes:
      - {name: conversion, kind: proportion}
      - {name: is_fraud, kind: label}
    bindings:
      - model: fraud-scorer
        sticky_key: x-user-id
        routes:
          - {version: 1.3.0, weight: 50}
          - {version: 1.4.0, weight: 50}
        analysis:
          primary: {outcome: conversion, direction: increase, mde: 0.05}
          guardrails: {max_error_rate: 0.05}
        serving:
          replicas: 1
"""
USERS = 3000


@pytest.fixture(scope="module")
def ab_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project.create(tmp_path_factory.mktemp("ab"))
    text = project.catalog.read_text(encoding="utf-8")
    project.catalog.write_text(text[: text.index("    bindings:\n")] + DECLARED, encoding="utf-8")
    try:
        project.ok("validate")
        project.ok("apply", "--auto-approve")
        yield project
    finally:
        project.cleanup()


def _simulate(project: Project, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "demo_users.py"), "checkout", *args],
        cwd=project.dir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, output(done)
    return done.stdout


def test_simulated_users_reach_a_verdict_that_the_better_version_is_promoted(ab_project: Project) -> None:
    said = _simulate(
        ab_project, "--users", str(USERS), "--outcome", "conversion", "--rate", "1.3.0=0.10", "--rate", "1.4.0=0.25"
    )
    assert f"{USERS} simulated users of fraud-scorer" in said

    doc = ab_project.json("analyze", "checkout")
    assert doc["ok"] is True and doc["schema"] == "modelcat/analysis-v1"
    versions = {v["version"]: v for v in doc["versions"]}
    assert sum(v["units"] for v in versions.values()) == USERS
    assert doc["joins"]["attributed"] == USERS and doc["joins"]["unattributed"] == 0
    assert [e["srm"] for e in doc["epochs"]] == [False]
    assert doc["source"]["telemetry"] in ("prometheus", "router-counters"), doc["source"]
    for v in versions.values():  # the telemetry source counts the same requests the assignment log holds
        assert v["requests"] == v["units"] and v["errors"] == 0, v
    candidate = versions["1.4.0"]
    assert candidate["verdict"] == "promote", candidate["reasons"]
    (conversion,) = [m for m in candidate["metrics"] if m["name"] == "conversion"]
    assert conversion["vote"] == "pass" and conversion["interval"][0] > 0

    # the same data, the same bytes: the document is a record a policy or a controller can consume
    period = ("--since", doc["since"], "--until", doc["until"])
    first = ab_project.run("analyze", "checkout", *period, "--format", "json")
    again = ab_project.run("analyze", "checkout", *period, "--format", "json")
    assert first.returncode == 0 and first.stdout == again.stdout, output(first)


def test_reporting_the_same_conversions_again_counts_them_once(ab_project: Project) -> None:
    before = ab_project.json("analyze", "checkout")
    _simulate(
        ab_project, "--users", str(USERS), "--outcome", "conversion", "--rate", "1.3.0=0.10", "--rate", "1.4.0=0.25"
    )
    after = ab_project.json("analyze", "checkout")
    assert after["joins"]["attributed"] == before["joins"]["attributed"]
    assert after["joins"]["duplicates"] == before["joins"]["duplicates"] + USERS
    converted = {v["version"]: v["outcomes"]["conversion"] for v in after["versions"]}
    assert converted == {v["version"]: v["outcomes"]["conversion"] for v in before["versions"]}


def test_the_html_report_is_one_self_contained_file(ab_project: Project, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    ab_project.ok("analyze", "checkout", "--format", "html", "--output", str(report))
    page = report.read_text(encoding="utf-8")
    assert page.count("<svg") >= 2 and "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")


def test_labels_of_the_served_scores_give_each_version_a_live_auc_in_analyze_and_show(ab_project: Project) -> None:
    # run last: these users are not the A/B test's above. Each label is 1 with the chance the model
    # answered (its own seeded features), so every version's scores rank its frauds above chance
    said = _simulate(ab_project, "--users", "1000", "--seed", "11", "--label", "is_fraud")
    assert "is_fraud reported for 1000 answers" in said, said

    doc = ab_project.json("analyze", "checkout")
    for version in doc["versions"]:
        live = version["live_metrics"]["is_fraud"]
        assert live["name"] == "auc" and live["n"] > 300, version
        assert 0.55 < live["value"] < 0.9, live  # the router recorded each answer's real score
        assert "auc" in version["offline_metrics"]
    shown = {a["name"]: a for a in ab_project.json("show")}["checkout"]["bindings"][0]["routes"]
    assert {r["version"]: r["live_metrics"]["is_fraud"]["n"] for r in shown} == {
        v["version"]: v["live_metrics"]["is_fraud"]["n"] for v in doc["versions"]
    }
