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


def test_show_puts_each_served_versions_live_metric_beside_its_offline_one(cli, write):
    from tests.feedback.helpers import assignment, at, event, write_stack_logs

    path = write(DEMO.read_text())
    scores = {
        "r1": ("1.3.0", 0.9),
        "r2": ("1.3.0", 0.2),
        "r3": ("1.3.0", 0.4),
        "r4": ("1.3.0", 0.5),
        "r5": ("1.4.0", 0.7),
    }
    write_stack_logs(
        path,
        "checkout",
        [
            assignment(rid, version, at(0), f"user-{rid}", model="fraud-scorer") | {"prediction": p}
            for rid, (version, p) in scores.items()
        ],
        # r1, r3 fraud; r2, r4 not: ranks 4 and 2 among 4, AUC = (6 - 3) / (2 * 2); 1.4.0's r5 unlabelled
        [
            event(f"e-{rid}", "is_fraud", label, at(48), request_id=rid)
            for rid, label in (("r1", 1), ("r2", 0), ("r3", 1), ("r4", 0))
        ],
    )
    result = cli("show", path, "--now", "2026-11-27")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["MODEL", "VERSION", "WEIGHT", "STAGE", "AGE", "DIGEST", "METRICS", "LIVE"]
    assert lines[2].endswith("auc=0.917 precision_at_1pct=0.74 recall=0.66  is_fraud: auc=0.75 (n=4)")
    assert lines[3].endswith("recall=0.69  -")  # no label yet for 1.4.0's predictions
    storefront = lines.index(next(line for line in lines if line.startswith("storefront")))
    assert "LIVE" not in lines[storefront + 1]  # no label outcome there

    apps = {a["name"]: a for a in json.loads(cli("show", path, "--now", "2026-11-27", "--format", "json").stdout)}
    routes = apps["checkout"]["bindings"][0]["routes"]
    assert routes[0]["live_metrics"] == {"is_fraud": {"name": "auc", "value": 0.75, "n": 4, "positives": 2}}
    assert routes[1]["live_metrics"] == {}


def test_show_without_an_applied_stack_shows_no_live_metrics(cli, write):
    path = write(DEMO.read_text())
    result = cli("show", path, "--now", "2026-11-27", "--format", "json")
    assert result.exit_code == 0, result.output
    routes = [r for app in json.loads(result.stdout) for b in app["bindings"] for r in b["routes"]]
    assert all(route["live_metrics"] == {} for route in routes)
    assert "LIVE" not in cli("show", path, "--now", "2026-11-27").stdout


def test_show_does_not_fail_on_unreadable_logs(cli, write):
    from catalog.layout import analytics_dir, run_dir, stack_name, state_root

    path = write(DEMO.read_text())
    day = analytics_dir(run_dir(state_root(path), stack_name("production", "local")))
    day = day / "assignments" / "application=checkout" / "day=2026-12-01"
    day.mkdir(parents=True)
    (day / "broken.parquet").write_bytes(b"not parquet at all")
    result = cli("show", path, "--now", "2026-11-27")
    assert result.exit_code == 0, result.output
    assert "LIVE" not in result.stdout and "auc=0.917" in result.stdout
