"""`modelcat show`: which model versions serve which application, how good, how old."""

from __future__ import annotations

import json

from tests.helpers import DEMO


def test_show_table_for_the_demo_catalog(cli):
    result = cli("show", DEMO, "--now", "2026-11-27")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "checkout  (environment production, owner payments-platform@example.com, sticky on x-user-id)"
    assert lines[1].split() == ["MODEL", "VERSION", "WEIGHT", "STAGE", "AGE", "DIGEST", "METRICS"]
    assert lines[2].split() == [
        "fraud-scorer",
        "1.3.0",
        "90%",
        "production",
        "136d",
        "fbe81f1d53c2",
        "auc=0.917",
        "precision_at_1pct=0.74",
        "recall=0.66",
    ]
    assert lines[3].split()[:5] == ["1.4.0", "10%", "candidate", "24d", "344eb462ff67"]
    assert any(line.startswith("storefront") for line in lines)
    assert any(line.startswith("retention-campaigns  (environment staging") for line in lines)


def test_show_json_puts_gate_metrics_first(cli):
    result = cli("show", DEMO, "--now", "2026-11-27", "--format", "json")
    apps = {a["name"]: a for a in json.loads(result.stdout)}
    assert set(apps) == {"checkout", "storefront", "retention-campaigns"}
    recommender = apps["storefront"]["bindings"][0]
    assert [(r["version"], r["weight"]) for r in recommender["routes"]] == [("2.1.0", 50), ("2.2.0", 50)]
    assert next(iter(recommender["routes"][0]["metrics"])) == "ndcg@10"  # the gate's metric leads
    assert recommender["routes"][1]["age_days"] == 39
    assert recommender["sticky_key"] == "x-session-id"


def test_show_refuses_an_invalid_catalog(cli, write):
    path = write(DEMO.read_text().replace("weight: 10}", "weight: 11}"))
    result = cli("show", path)
    assert result.exit_code == 1
    assert "route weights add up to 101, not 100" in result.stderr


def test_show_rejects_a_bad_now(cli):
    result = cli("show", DEMO, "--now", "yesterday")
    assert result.exit_code == 2
    assert "--now 'yesterday'" in result.stderr


def test_show_warns_when_a_served_version_is_older_than_its_age_gate(cli):
    result = cli("show", DEMO, "--now", "2027-06-01")
    assert result.exit_code == 0, result.output
    warnings = [line.strip() for line in result.stdout.splitlines() if "warning:" in line]
    advice = "retrain it or route a newer version"
    assert warnings == [
        f"warning: fraud-scorer 1.3.0 is 322 days old, over its max_age_days gate of 180 days: {advice}",
        f"warning: fraud-scorer 1.4.0 is 210 days old, over its max_age_days gate of 180 days: {advice}",
    ]
    fresh = cli("show", DEMO, "--now", "2026-11-27")
    assert "warning:" not in fresh.stdout


def test_show_json_gives_each_binding_its_age_gate_and_marks_the_versions_over_it(cli, write):
    # 1.4.0 routed at weight 0 (pinned smoke requests only) is not served: no mark
    path = write(DEMO.read_text().replace("weight: 90}", "weight: 100}").replace("weight: 10}", "weight: 0}"))
    result = cli("show", path, "--now", "2027-06-01", "--format", "json")
    assert result.exit_code == 0, result.output
    apps = {a["name"]: a for a in json.loads(result.stdout)}
    checkout = apps["checkout"]["bindings"][0]
    assert checkout["max_age_days"] == 180  # the binding's own gate
    assert [(r["version"], r["over_age_gate"]) for r in checkout["routes"]] == [("1.3.0", True), ("1.4.0", False)]
    recommender = apps["storefront"]["bindings"][0]
    assert recommender["max_age_days"] == 365  # defaults.gates
    assert [r["over_age_gate"] for r in recommender["routes"]] == [False, False]
