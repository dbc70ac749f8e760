"""diff_catalogs: two catalogs in, what changed in model terms out."""

from __future__ import annotations

import random

import yaml

from catalog.domain.diff import diff_catalogs, version_order
from tests.git_catalogs import (
    FRAUD_1_3_0,
    add_version,
    catalog_of,
    demo_text,
    fraud_scorer_bytes,
    remove_version,
    swap_artifact,
)


def _diff(before: str, after: str):
    return diff_catalogs(catalog_of(before), catalog_of(after))


def test_same_catalog_is_no_change():
    text = demo_text()
    diff = _diff(text, text)
    assert diff.empty
    assert diff.model_dump(mode="json")["empty"] is True


def test_weight_change_names_application_binding_and_both_weights():
    text = demo_text()
    after = text.replace("{version: 1.3.0, weight: 90}", "{version: 1.3.0, weight: 75}").replace(
        "{version: 1.4.0, weight: 10}", "{version: 1.4.0, weight: 25}"
    )
    diff = _diff(text, after)
    (app,) = diff.applications
    assert (app.name, app.status, app.environment) == ("checkout", "changed", "production")
    (binding,) = app.bindings
    assert binding.model == "fraud-scorer" and binding.changes == []
    assert [(w.version, w.before, w.after) for w in binding.weights] == [("1.3.0", 90, 75), ("1.4.0", 10, 25)]
    assert [(r.version, r.weight) for r in binding.routes_before] == [("1.3.0", 90), ("1.4.0", 10)]
    assert [(r.version, r.weight) for r in binding.routes_after] == [("1.3.0", 75), ("1.4.0", 25)]
    assert not diff.versions_changed and not diff.models_changed


def test_digest_swap_of_a_served_version_is_flagged_with_who_it_served():
    text = demo_text()
    after, new_hex = swap_artifact(text, FRAUD_1_3_0, fraud_scorer_bytes(seed=3))
    diff = _diff(text, after)
    (change,) = diff.versions_changed
    assert (change.model, change.version) == ("fraud-scorer", "1.3.0")
    digest = next(c for c in change.changes if c.field == "artifact.digest")
    assert (digest.before, digest.after) == (f"sha256:{FRAUD_1_3_0}", f"sha256:{new_hex}")
    assert [(t.application, t.weight) for t in change.served_on_base] == [("checkout", 90)]
    assert change.digest_changed and change.served_digest_swap
    assert diff.served_digest_swaps == [change]
    dumped = diff.model_dump(mode="json")["versions_changed"][0]
    assert dumped["served_digest_swap"] is True


def test_digest_swap_of_an_unrouted_version_is_a_change_but_not_a_released_swap():
    text = demo_text()
    old_hex = "412b0897cc2f4d2eea07805f549afcb562958eb448123ee068a2372abe2218b3"  # fraud-scorer 1.2.0, unrouted
    after, _ = swap_artifact(text, old_hex, fraud_scorer_bytes(seed=4))
    (change,) = _diff(text, after).versions_changed
    assert change.version == "1.2.0" and change.digest_changed
    assert change.served_on_base == [] and not change.served_digest_swap


def test_a_zero_weight_route_is_not_traffic():
    text = demo_text().replace("{version: 1.3.0, weight: 90}", "{version: 1.3.0, weight: 0}")
    text = text.replace("{version: 1.4.0, weight: 10}", "{version: 1.4.0, weight: 100}")
    after, _ = swap_artifact(text, FRAUD_1_3_0, fraud_scorer_bytes(seed=3))
    (change,) = _diff(text, after).versions_changed
    assert change.digest_changed and not change.served_digest_swap


def test_metric_stage_size_and_trained_at_changes():
    text = demo_text()
    after = text.replace(
        "metrics: {auc: 0.917, precision_at_1pct: 0.74, recall: 0.66}", "metrics: {auc: 0.918, recall: 0.66, f1: 0.5}"
    )
    after = after.replace("trained_at: 2026-07-14\n", "trained_at: 2026-07-15\n")
    after = after.replace(
        "        stage: candidate\n        labels: {dataset: txn-2026-10}",
        "        stage: production\n        labels: {dataset: txn-2026-10}",
    )
    diff = _diff(text, after)
    by_version = {v.version: [(c.field, c.before, c.after) for c in v.changes] for v in diff.versions_changed}
    assert by_version["1.3.0"] == [  # metric names sorted
        ("metrics.auc", 0.917, 0.918),
        ("metrics.f1", None, 0.5),
        ("metrics.precision_at_1pct", 0.74, None),
        ("trained_at", "2026-07-14T00:00:00Z", "2026-07-15T00:00:00Z"),
    ]
    assert by_version["1.4.0"] == [("stage", "candidate", "production")]
    assert list(by_version) == ["1.3.0", "1.4.0"]


def test_version_removed_and_added_with_the_traffic_they_carry():
    text = demo_text()
    data = fraud_scorer_bytes(seed=15)
    after = add_version(remove_version(text, "1.2.0", "1.3.0"), data, "1.5.0", "\n  - name: recommender")
    after = after.replace(
        "{version: 1.4.0, weight: 10}", "{version: 1.4.0, weight: 5}\n          - {version: 1.5.0, weight: 5}"
    )
    diff = _diff(text, after)
    (removed,) = diff.versions_removed
    assert (removed.model, removed.version, removed.stage, removed.traffic) == (
        "fraud-scorer",
        "1.2.0",
        "deprecated",
        [],
    )
    (added,) = diff.versions_added
    assert (added.model, added.version, added.size_bytes) == ("fraud-scorer", "1.5.0", len(data))
    assert [(t.application, t.weight) for t in added.traffic] == [("checkout", 5)]
    (binding,) = diff.applications[0].bindings
    assert [(w.version, w.before, w.after) for w in binding.weights] == [("1.4.0", 10, 5), ("1.5.0", None, 5)]


def test_rename_is_detected_by_identical_versions_and_digests():
    text = demo_text()
    after = text.replace("name: churn-predictor", "name: churn-model").replace(
        "model: churn-predictor", "model: churn-model"
    )
    diff = _diff(text, after)
    (rename,) = diff.renames
    assert (rename.before, rename.after, rename.versions) == (
        "churn-predictor",
        "churn-model",
        ["0.9.0", "1.0.0", "1.1.0"],
    )
    assert diff.models_added == diff.models_removed == []
    assert diff.versions_added == diff.versions_removed == []
    (app,) = diff.applications
    (binding,) = app.bindings
    assert (app.name, binding.model, binding.status) == ("retention-campaigns", "churn-model", "changed")
    assert [(c.field, c.before, c.after) for c in binding.changes] == [("model", "churn-predictor", "churn-model")]
    assert binding.weights == []


def test_a_new_name_with_other_bytes_is_a_removal_and_an_addition():
    text = demo_text()
    after = text.replace("name: churn-predictor", "name: churn-model").replace(
        "model: churn-predictor", "model: churn-model"
    )
    after = remove_version(after, "0.9.0", "1.0.0")
    diff = _diff(text, after)
    assert diff.renames == []
    assert (diff.models_added, diff.models_removed) == (["churn-model"], ["churn-predictor"])
    assert [v.version for v in diff.versions_removed] == ["0.9.0", "1.0.0", "1.1.0"]
    assert [(t.application, t.weight) for t in diff.versions_removed[2].traffic] == [("retention-campaigns", 100)]
    bindings = diff.applications[0].bindings
    assert [(b.model, b.status) for b in bindings] == [("churn-model", "added"), ("churn-predictor", "removed")]


def test_rollout_sticky_key_and_serving_changes_per_binding():
    text = demo_text()
    after = text.replace("step_percent: 10\n", "step_percent: 20\n").replace(
        "sticky_key: x-user-id", "sticky_key: x-account-id"
    )
    after = after.replace(
        "          replicas: 3\n          min_replicas: 2\n", "          replicas: 4\n          min_replicas: 2\n"
    )
    (app,) = _diff(text, after).applications
    (binding,) = app.bindings
    assert [(c.field, c.before, c.after) for c in binding.changes] == [
        ("sticky_key", "x-user-id", "x-account-id"),
        ("serving.replicas", 3, 4),
        ("rollout.step_percent", 10, 20),
    ]


def test_a_defaults_change_shows_once_in_settings_and_on_every_binding_it_reaches():
    text = demo_text()
    after = text.replace(
        "    replicas: 2\n    min_replicas: 1\n    max_replicas: 4\n",
        "    replicas: 3\n    min_replicas: 1\n    max_replicas: 4\n",
    )
    diff = _diff(text, after)
    assert [(c.field, c.before, c.after) for c in diff.settings] == [("defaults.serving.replicas", 2, 3)]
    reached = [(a.name, b.model) for a in diff.applications for b in a.bindings]
    assert reached == [("storefront", "recommender"), ("storefront", "search-ranker")]  # the others set their own


def test_application_environment_and_environment_settings_changes():
    text = demo_text()
    after = text.replace("    environment: staging\n", "    environment: production\n").replace(
        "namespace: ml-staging", "namespace: ml-stage"
    )
    diff = _diff(text, after)
    (app,) = diff.applications
    assert (app.name, app.environment) == ("retention-campaigns", "production")
    assert [(c.field, c.before, c.after) for c in app.changes] == [("environment", "staging", "production")]
    (env,) = diff.environments
    assert (env.name, env.status, env.target) == ("staging", "changed", "local")
    assert [(c.field, c.before, c.after) for c in env.changes] == [("kubernetes.namespace", "ml-staging", "ml-stage")]


def test_environment_target_change_added_and_removed():
    text = demo_text()
    after = text.replace("  - name: staging\n    target: local\n", "  - name: staging\n    target: kubernetes\n")
    after = after.replace("  - name: staging\n", "  - name: canary\n  - name: staging\n")
    diff = _diff(text, after)
    assert [(e.name, e.status, [c.field for c in e.changes]) for e in diff.environments] == [
        ("canary", "added", []),
        ("staging", "changed", ["target"]),
    ]
    back = diff_catalogs(catalog_of(after), catalog_of(text))
    assert [(e.name, e.status) for e in back.environments] == [("canary", "removed"), ("staging", "changed")]


def test_empty_base_adds_everything_and_empty_head_removes_everything():
    catalog = catalog_of(demo_text())
    added = diff_catalogs(None, catalog)
    assert added.models_added == ["churn-predictor", "fraud-scorer", "recommender", "search-ranker"]
    assert len(added.versions_added) == 11
    assert [(a.name, a.status) for a in added.applications] == [
        ("checkout", "added"),
        ("retention-campaigns", "added"),
        ("storefront", "added"),
    ]
    removed = diff_catalogs(catalog, None)
    assert len(removed.versions_removed) == 11 and removed.models_added == []
    served = {(v.model, v.version) for v in removed.versions_removed if v.traffic}
    assert served == {
        ("fraud-scorer", "1.3.0"),
        ("fraud-scorer", "1.4.0"),
        ("recommender", "2.1.0"),
        ("recommender", "2.2.0"),
        ("search-ranker", "3.2.0"),
        ("churn-predictor", "1.1.0"),
    }


def test_order_does_not_depend_on_the_order_of_the_file():
    """The same catalogs with models, versions, applications and environments shuffled: the same diff."""
    text = demo_text()
    after = swap_artifact(text, FRAUD_1_3_0, fraud_scorer_bytes(seed=3))[0].replace(
        "step_percent: 10\n", "step_percent: 20\n"
    )
    after = remove_version(after, "1.2.0", "1.3.0").replace("name: churn-predictor", "name: churn-model")
    after = after.replace("model: churn-predictor", "model: churn-model").replace(
        "namespace: ml-staging", "namespace: x"
    )
    expected = _diff(text, after).model_dump(mode="json")
    rng = random.Random(7)
    for _ in range(3):
        shuffled = []
        for source in (text, after):
            document = yaml.safe_load(source)
            for key in ("models", "applications", "environments"):
                rng.shuffle(document[key])
            for model in document["models"]:
                rng.shuffle(model["versions"])
                for version in model["versions"]:
                    metrics = list(version["metrics"].items())
                    rng.shuffle(metrics)
                    version["metrics"] = dict(metrics)
            shuffled.append(yaml.safe_dump(document, sort_keys=False))
        assert _diff(*shuffled).model_dump(mode="json") == expected


def test_version_order_is_semantic():
    versions = ["1.10.0", "1.2.0", "1.2.0-rc.1", "1.2.0-alpha", "0.9.0", "1.2.0-rc.10", "1.2.0-rc.2"]
    assert sorted(versions, key=version_order) == [
        "0.9.0",
        "1.2.0-alpha",
        "1.2.0-rc.1",
        "1.2.0-rc.2",
        "1.2.0-rc.10",
        "1.2.0",
        "1.10.0",
    ]


def test_the_diff_says_which_versions_a_change_touches():
    """Versions whose artifact a change must verify: added, other bytes, another signature; not a
    version whose metrics or stage alone changed, nor one removed."""
    text = demo_text()
    after, _ = swap_artifact(text, FRAUD_1_3_0, fraud_scorer_bytes(seed=3))  # other bytes for 1.3.0
    after = add_version(after, fraud_scorer_bytes(seed=4), "1.5.0", "      - version: 1.4.0")
    after = after.replace(  # search-ranker 3.2.0: another output shape (signature only)
        "{name: relevance, dtype: float32, shape: [batch, 20]}\n        metrics: {ndcg@10: 0.538",
        "{name: relevance, dtype: float32, shape: [batch, 21]}\n        metrics: {ndcg@10: 0.538",
    )
    after = after.replace("metrics: {auc: 0.928", "metrics: {auc: 0.929")  # fraud-scorer 1.4.0: metrics only
    assert "shape: [batch, 21]" in after and "auc: 0.929" in after
    diff = _diff(text, after)
    assert {(v.model, v.version) for v in diff.versions_changed} >= {("fraud-scorer", "1.4.0")}
    assert diff.touched_versions() == {("fraud-scorer", "1.3.0"), ("fraud-scorer", "1.5.0"), ("search-ranker", "3.2.0")}
    assert _diff(after, text).touched_versions() == {("fraud-scorer", "1.3.0"), ("search-ranker", "3.2.0")}


def test_outcome_and_analysis_changes_show_on_the_application_and_binding():
    text = demo_text()
    after = (
        text.replace(
            "      - {name: conversion, kind: proportion}",
            "      - {name: conversion, kind: proportion}\n      - {name: basket_value, kind: mean}",
        )
        .replace("mde: 0.02}", "mde: 0.01}")
        .replace(
            "          min_samples_per_arm: 500\n",
            "          min_samples_per_arm: 500\n          guardrails: {outcomes: [{outcome: basket_value, max_drop: 2.0}]}\n",
        )
    )
    (app,) = _diff(text, after).applications
    assert app.name == "storefront"
    assert [(c.field, c.before, c.after) for c in app.changes] == [("outcomes.basket_value", None, "mean")]
    (binding,) = app.bindings
    assert binding.model == "recommender" and binding.weights == []
    assert [(c.field, c.before, c.after) for c in binding.changes] == [
        ("analysis.primary.mde", 0.02, 0.01),
        ("analysis.guardrails.outcomes.basket_value", None, 2.0),
    ]
