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
