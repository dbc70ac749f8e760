"""``modelcat diff`` on a real git repository with one change per commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from catalog.cli.main import main
from catalog.editing import bind_routes
from tests.git_catalogs import (
    FRAUD_1_3_0,
    GitRepo,
    add_version,
    demo_text,
    fraud_scorer_bytes,
    remove_version,
    swap_artifact,
)
from tests.helpers import with_demo_keys

NO_CHANGE = {"create": 0, "update": 0, "replace": 0, "delete": 0}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """Tags: empty (no models.yaml), t0 the demo, then one change each up to t7; broken, then fixed."""
    repo = GitRepo(tmp_path_factory.mktemp("catalog-repo"))
    (repo.root / "README.md").write_text("catalog\n")
    with_demo_keys(repo.root)
    repo.git("add", "README.md", "keys")
    repo.git("commit", "-q", "-m", "start")
    repo.git("tag", "empty")
    text = demo_text()
    repo.commit(text, "the demo catalog", "t0")
    bind_routes(repo.catalog, "checkout", "fraud-scorer", [("1.3.0", 80), ("1.4.0", 20)])
    text = repo.catalog.read_text()
    repo.commit(text, "checkout: 20 % on 1.4.0", "t1")
    swapped = fraud_scorer_bytes(seed=3)
    repo.add_artifact(swapped)
    text, _ = swap_artifact(text, FRAUD_1_3_0, swapped)
    repo.commit(text, "fraud-scorer 1.3.0: other bytes", "t2")
    text = remove_version(text, "1.2.0", "1.3.0")
    repo.commit(text, "fraud-scorer 1.2.0 removed", "t3")
    text = text.replace("name: churn-predictor", "name: churn-model").replace(
        "model: churn-predictor", "model: churn-model"
    )
    repo.commit(text, "churn-predictor is churn-model", "t4")
    text = text.replace("step_percent: 10\n", "step_percent: 20\n")
    repo.commit(text, "checkout: canary steps of 20 %", "t5")
    text = text.replace("    environment: staging\n", "    environment: production\n")
    text = text.replace("namespace: ml-staging", "namespace: ml-stage")
    repo.commit(text, "retention-campaigns in production", "t6")
    new = fraud_scorer_bytes(seed=15)
    repo.add_artifact(new)
    repo.catalog.write_text(add_version(text, new, "1.5.0", "\n  - name: recommender"))
    bind_routes(repo.catalog, "checkout", "fraud-scorer", [("1.3.0", 70), ("1.4.0", 20), ("1.5.0", 10)])
    text = repo.catalog.read_text()
    repo.commit(text, "fraud-scorer 1.5.0 at 10 %", "t7")
    repo.commit(text.replace("sticky_key: x-user-id", "sticky_kee: x-user-id"), "a typo", "broken")
    repo.commit(text, "fixed", "fixed")
    return repo


@pytest.fixture
def run(repo: GitRepo) -> Callable[..., Result]:
    runner = CliRunner()

    def _run(*args: str) -> Result:
        return runner.invoke(main, ["diff", *args, "--catalog", str(repo.catalog)], catch_exceptions=False)

    return _run


def _json(run: Callable[..., Result], *args: str) -> dict:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _counts(document: dict) -> dict[str, dict[str, int]]:
    return {s["stack"]: s["counts"] for s in document["blast_radius"]["stacks"]}


def test_weight_change_in_text(run: Callable[..., Result]) -> None:
    result = run("t0", "t1")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("modelcat diff t0 -> t1 (")
    assert "      ~ fraud-scorer: weights 1.3.0 90 -> 80, 1.4.0 10 -> 20 (now 1.3.0=80% 1.4.0=20%)" in lines
    assert "  production-local: 0 to create, 1 to update, 0 to replace, 0 to delete" in lines
    assert "    update   checkout: router: fraud-scorer 1.3.0 90 -> 80 %, fraud-scorer 1.4.0 10 -> 20 %" in lines
    assert not any(line.startswith("WARNING") for line in lines)


def test_digest_swap_of_a_served_version_warns_and_replaces(run: Callable[..., Result]) -> None:
    document = _json(run, "t1", "t2")
    (swap,) = document["diff"]["versions_changed"]
    assert (swap["model"], swap["version"], swap["served_digest_swap"]) == ("fraud-scorer", "1.3.0", True)
    assert swap["served_on_base"] == [{"application": "checkout", "weight": 80}]
    (warning,) = document["warnings"]
    assert warning.startswith("fraud-scorer 1.3.0: digest changed (sha256:fbe81f1d53c2…") and "checkout 80 %" in warning
    assert _counts(document) == {"production-local": {**NO_CHANGE, "update": 1, "replace": 1}}
    text = run("t1", "t2").output
    assert "WARNING: fraud-scorer 1.3.0: digest changed" in text
    assert "    replace  checkout: fraud-scorer 1.3.0 endpoint: bytes sha256:fbe81f1d53c2 -> sha256:" in text
    assert "    update   checkout: router: fraud-scorer 1.3.0 digest" in text.splitlines()


def test_removing_an_unrouted_version_changes_no_resource(run: Callable[..., Result]) -> None:
    document = _json(run, "t2", "t3")
    assert [(v["model"], v["version"], v["traffic"]) for v in document["diff"]["versions_removed"]] == [
        ("fraud-scorer", "1.2.0", [])
    ]
    assert document["blast_radius"]["stacks"] == [] and document["warnings"] == []


def test_rename(run: Callable[..., Result]) -> None:
    document = _json(run, "t3", "t4")
    assert document["diff"]["renames"] == [
        {"before": "churn-predictor", "after": "churn-model", "versions": ["0.9.0", "1.0.0", "1.1.0"]}
    ]
    assert document["diff"]["models_added"] == document["diff"]["models_removed"] == []
    assert _counts(document) == {"staging-local": {"create": 1, "update": 1, "replace": 0, "delete": 1}}
    assert (
        "  ~ renamed churn-predictor -> churn-model (versions 0.9.0, 1.0.0, 1.1.0, same digests)"
        in run("t3", "t4").output
    )


def test_rollout_change(run: Callable[..., Result]) -> None:
    document = _json(run, "t4", "t5")
    (app,) = document["diff"]["applications"]
    (binding,) = app["bindings"]
    assert binding["changes"] == [{"field": "rollout.step_percent", "before": 10, "after": 20}]
    assert document["blast_radius"]["stacks"] == []  # local processes carry no rollout
    on_kubernetes = _json(run, "t4", "t5", "--target", "kubernetes")
    (stack,) = on_kubernetes["blast_radius"]["stacks"]
    assert stack["stack"] == "production-kubernetes" and stack["counts"]["update"] > 0
    assert stack["counts"]["update"] == sum(stack["counts"].values())


def test_environment_change(run: Callable[..., Result]) -> None:
    document = _json(run, "t5", "t6")
    (app,) = document["diff"]["applications"]
    assert (app["name"], app["changes"]) == (
        "retention-campaigns",
        [{"field": "environment", "before": "staging", "after": "production"}],
    )
    (env,) = document["diff"]["environments"]
    assert env["changes"] == [{"field": "kubernetes.namespace", "before": "ml-staging", "after": "ml-stage"}]
    assert _counts(document) == {
        "production-local": {**NO_CHANGE, "create": 2},
        "staging-local": {**NO_CHANGE, "delete": 3},  # its endpoint, its router and, emptied, its Prometheus
    }


def test_head_defaults_to_the_working_tree(run: Callable[..., Result]) -> None:
    document = _json(run, "t6")
    assert document["head"]["revision"] is None and document["head"]["present"] is True
    (added,) = document["diff"]["versions_added"]
    assert (added["version"], added["traffic"]) == ("1.5.0", [{"application": "checkout", "weight": 10}])
    (stack,) = document["blast_radius"]["stacks"]
    assert [(c["action"], c["type"], c["version"]) for c in stack["changes"]] == [
        ("update", "modelcat_route", None),
        ("create", "modelcat_endpoint", "1.5.0"),
    ]
    assert run("t7").output.splitlines()[1] == "no changes to the catalog"


def test_json_shape(run: Callable[..., Result]) -> None:
    document = _json(run, "t0", "t7")
    assert list(document) == ["ok", "base", "head", "notes", "changed", "warnings", "diff", "blast_radius"]
    assert document["base"] == {"file": document["head"]["file"], "revision": "t0", "present": True}
    assert document["changed"] is True
    assert set(document["diff"]) == {
        "models_added",
        "models_removed",
        "renames",
        "models_changed",
        "versions_added",
        "versions_removed",
        "versions_changed",
        "applications",
        "environments",
        "settings",
        "empty",
    }
    assert set(document["blast_radius"]) == {"stacks", "counts"}
    for stack in document["blast_radius"]["stacks"]:
        assert set(stack) == {"stack", "environment", "target", "changes", "counts"}
        assert list(stack["counts"]) == ["create", "update", "replace", "delete"]
        for change in stack["changes"]:
            assert set(change) == {
                "type",
                "id",
                "action",
                "application",
                "model",
                "version",
                "subject",
                "detail",
                "attributes",
            }
    totals = document["blast_radius"]["counts"]
    assert totals == {a: sum(s["counts"][a] for s in document["blast_radius"]["stacks"]) for a in totals}
    assert _json(run, "t0", "t1", "--no-blast-radius")["blast_radius"] is None


def test_markdown(run: Callable[..., Result]) -> None:
    result = run("t1", "t2", "--format", "markdown")
    assert result.exit_code == 0
    text = result.output
    assert text.startswith("### modelcat diff `t1` → `t2`\n")
    assert "> [!WARNING]\n> fraud-scorer 1.3.0: digest changed" in text
    assert "| stack | create | update | replace | delete |" in text
    assert "| production-local | 0 | 1 | 1 | 0 |" in text
    assert "| replace | checkout: fraud-scorer 1.3.0 endpoint | bytes sha256:fbe81f1d53c2 -> sha256:" in text


def test_a_revision_without_the_file_is_an_empty_base(run: Callable[..., Result], repo: GitRepo) -> None:
    document = _json(run, "empty", "t0")
    assert document["base"]["present"] is False
    assert document["notes"] == [f"{repo.catalog} does not exist at empty: compared as an empty catalog"]
    assert len(document["diff"]["versions_added"]) == 11
    assert {s["stack"]: s["counts"]["create"] for s in document["blast_radius"]["stacks"]} == {
        "production-local": 8,  # 5 endpoints, 2 routers, the stack's Prometheus
        "staging-local": 3,
    }
    assert sum(document["blast_radius"]["counts"].values()) == 11


@pytest.mark.parametrize("args", [("no-such-rev",), ("t0", "no-such-rev"), ("t0~99",)])
def test_bad_revision_is_a_usage_error(run: Callable[..., Result], args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert "is not a commit in the git repository" in result.output
    assert result.output.count("\n") <= 2


def test_invalid_catalog_at_a_revision_names_the_revision_and_line(run: Callable[..., Result], repo: GitRepo) -> None:
    broken = repo.git("show", "broken:models.yaml").splitlines()
    line = next(i for i, text in enumerate(broken, start=1) if "sticky_kee" in text)
    for args in (("broken", "t7"), ("t7", "broken"), ("broken",)):
        result = run(*args)
        assert result.exit_code == 1, result.output
        assert f"{repo.catalog}@broken:{line}:" in result.output
        assert "sticky_kee" in result.output
        assert f"error: {repo.catalog}@broken: 1 problem found" in result.output
    document = json.loads(run("broken", "--format", "json").output)
    assert document["ok"] is False and [p["line"] for p in document["problems"]] == [line]


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(demo_text())
    with_demo_keys(tmp_path)
    result = CliRunner().invoke(main, ["diff", "HEAD", "--catalog", str(tmp_path / "models.yaml")])
    assert result.exit_code == 2 and "is not a commit" in result.output
