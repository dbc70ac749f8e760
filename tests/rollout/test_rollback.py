"""`modelcat rollback APP --model M --to GITREF`: exactly that revision's routes, as one commit with
its trailers, through review's rules (a rollback to an older version is not paced by MC012, there
or in CI's review of it); refused, with nothing written, for a removed version, a rollout under
way, a policy deny or uncommitted edits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.git_catalogs import GitRepo, demo_repository, demo_text, git_env, remove_version
from tests.helpers import run_review
from tests.rollout.recorded import (
    T1,
    hand_commit,
    recorded_repository,
    started_repository,
    with_mirror,
    with_routes,
)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """The demo repository (checkout at 1.3.0 90 %, 1.4.0 10 %), then 80/20 by hand; the cwd is it."""
    for key, value in git_env().items():
        if key.startswith("GIT_"):
            monkeypatch.setenv(key, value)
    repo = demo_repository(tmp_path / "catalog")
    monkeypatch.chdir(repo.root)
    hand_commit(repo, with_routes(demo_text(), (("1.3.0", 80), ("1.4.0", 20))), "checkout: 1.4.0 to 20 %", T1)
    return repo


def _rollback(cli, ref: str, *extra: str):
    return cli("rollback", "checkout", "--model", "fraud-scorer", "--to", ref, *extra)


def _unchanged(repo: GitRepo, head: str, text: str) -> None:
    assert repo.git("rev-parse", "HEAD") == head
    assert repo.catalog.read_text(encoding="utf-8") == text
    assert repo.git("status", "--porcelain") == ""


def test_rollback_restores_exactly_the_routes_of_that_revision_as_one_commit(cli, repo: GitRepo) -> None:
    base = repo.git("rev-parse", "base")
    before = repo.git("rev-parse", "HEAD")
    result = _rollback(cli, "base", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["ok"] is True and document["changed"] is True
    assert document["to"] == {"ref": "base", "commit": base}
    assert document["after"]["routes"] == [{"version": "1.3.0", "weight": 90}, {"version": "1.4.0", "weight": 10}]
    assert repo.git("diff", "base", "HEAD") == ""  # byte for byte the revision's catalog again
    assert repo.git("rev-parse", "HEAD^") == before and repo.git("rev-parse", "HEAD") == document["commit"]
    assert repo.git("diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD") == "models.yaml"
    assert repo.git("log", "-1", "--format=%s") == "rollback checkout/fraud-scorer to base"
    trailers = repo.git("log", "-1", "--format=%(trailers:only,unfold)")
    assert f"Rollback-To: base {base}" in trailers.splitlines()
    assert "Decided-By: modelcat rollback (t <t@example.com>)" in trailers.splitlines()
    assert repo.git("status", "--porcelain") == ""


def test_a_rollback_shows_in_the_history_as_such(cli, repo: GitRepo) -> None:
    assert _rollback(cli, "HEAD~1").exit_code == 0
    history = json.loads(cli("rollout", "history", "checkout", "--format", "json").output)
    last = history["bindings"][0]["periods"][-1]["change"]
    assert last["kind"] == "rollback" and last["rollback_to"].startswith("HEAD~1 ")
    assert last["decided_by"] == "modelcat rollback (t <t@example.com>)"


def test_a_rollback_to_the_routes_in_force_commits_nothing(cli, repo: GitRepo) -> None:
    head, text = repo.git("rev-parse", "HEAD"), repo.catalog.read_text()
    result = _rollback(cli, "HEAD")
    assert result.exit_code == 0
    assert "already has the routes of HEAD (1.3.0=80%, 1.4.0=20%): nothing to commit" in result.output
    _unchanged(repo, head, text)


def test_rollback_is_refused_naming_a_version_removed_since(cli, repo: GitRepo) -> None:
    text = with_routes(demo_text(), (("1.2.0", 10), ("1.3.0", 90)))
    hand_commit(repo, text, "checkout: 1.2.0 back for a check", "2026-12-03T10:00:00Z")
    then = repo.git("rev-parse", "HEAD")
    removed = remove_version(with_routes(demo_text(), (("1.3.0", 100),)), "1.2.0", "1.3.0")
    hand_commit(repo, removed, "fraud-scorer: drop 1.2.0", "2026-12-04T10:00:00Z")
    head, now = repo.git("rev-parse", "HEAD"), repo.catalog.read_text()
    result = _rollback(cli, then, "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["ok"] is False
    message = document["error"]["message"]
    assert message.startswith(f"rollback refused: the routes of {then} name fraud-scorer 1.2.0, removed from")
    _unchanged(repo, head, now)


def test_rollback_is_refused_while_a_rollout_of_the_binding_runs(cli, tmp_path, monkeypatch) -> None:
    repo, recorder = started_repository(tmp_path / "catalog", monkeypatch)
    head, text = repo.git("rev-parse", "HEAD"), repo.catalog.read_text()
    result = _rollback(cli, "HEAD~1")
    assert result.exit_code == 1
    assert (
        f"a rollout of checkout/fraud-scorer is under way: {recorder.record.rollout_id} (running); abort it first"
        in result.output
    )
    _unchanged(repo, head, text)


def test_a_rollback_after_a_promote_restores_the_older_version_at_once(cli, tmp_path, monkeypatch) -> None:
    """1.3.0 from 0 to 90 % in one change: a rollback to an older version, which MC012 does not pace."""
    repo, _ = recorded_repository(tmp_path / "catalog", monkeypatch)  # promoted: 1.4.0 at 100 %
    promoted = repo.git("rev-parse", "HEAD")
    result = _rollback(cli, "HEAD~2", "--format", "json")  # the rollout's first step: 1.3.0 90 %, 1.4.0 10 %
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["changed"] is True
    assert document["before"]["routes"] == [{"version": "1.4.0", "weight": 100}]
    assert document["after"]["routes"] == [{"version": "1.3.0", "weight": 90}, {"version": "1.4.0", "weight": 10}]
    assert repo.git("rev-parse", "HEAD^") == promoted and repo.git("rev-parse", "HEAD") == document["commit"]
    assert _binding_at(repo, "HEAD") == _binding_at(repo, "HEAD~3") == ([("1.3.0", 90), ("1.4.0", 10)], None)


def test_review_of_a_rollback_after_a_promote_has_no_mc012_finding(cli, tmp_path, monkeypatch) -> None:
    """What CI runs on a pull request holding the rollback commit: `modelcat review BASE`."""
    recorded_repository(tmp_path / "catalog", monkeypatch)  # promoted: 1.4.0 at 100 %
    assert _rollback(cli, "HEAD~2").exit_code == 0  # back to 1.3.0 90 %, 1.4.0 10 %
    code, comment, sarif, report = run_review(cli, "HEAD~1")  # the promote commit as the base
    assert code == 0, comment
    assert "fraud-scorer: weights 1.3.0 (none) -> 90, 1.4.0 100 -> 10" in comment
    assert next(r for r in report["policy"]["rules"] if r["id"] == "MC012")["skipped"] is None  # it ran
    assert [f for f in report["policy"]["findings"] if f["rule"] == "MC012"] == []
    assert "MC012" not in {r["ruleId"] for r in sarif["runs"][0]["results"]}
    assert [c["kind"] for c in report["rollout_commits"]] == ["rollback"]


def test_rollback_is_refused_when_review_would_block_the_change_listing_the_findings(cli, repo: GitRepo) -> None:
    hand_commit(
        repo,
        with_routes(demo_text(), (("1.3.0", 50), ("1.4.0", 50))),
        "checkout: 1.4.0 to 50 %",
        "2026-12-03T10:00:00Z",
    )
    hand_commit(repo, with_routes(demo_text(), (("1.3.0", 100),)), "checkout: 1.4.0 out", "2026-12-04T10:00:00Z")
    head, text = repo.git("rev-parse", "HEAD"), repo.catalog.read_text()
    result = _rollback(cli, "HEAD~1")  # 1.4.0 from 0 to 50 % at once: newer than 1.3.0, whose share falls
    assert result.exit_code == 1
    assert "rollback refused: review blocks restoring checkout/fraud-scorer to 1.3.0 50 %, 1.4.0 50 %" in result.output
    assert "MC012 checkout: fraud-scorer 1.4.0 goes from 0% to 50% of the traffic in one change" in result.output
    _unchanged(repo, head, text)


def test_rollback_is_refused_over_uncommitted_edits_of_the_catalog(cli, repo: GitRepo) -> None:
    edited = repo.catalog.read_text().replace("Card checkout;", "Card checkout (edited);")
    repo.catalog.write_text(edited)
    head = repo.git("rev-parse", "HEAD")
    result = _rollback(cli, "base")
    assert result.exit_code == 1
    assert "models.yaml has uncommitted changes: commit or discard them first" in result.output
    assert repo.git("rev-parse", "HEAD") == head and repo.catalog.read_text() == edited


def test_rollback_to_an_unknown_revision_exits_2(cli, repo: GitRepo) -> None:
    result = _rollback(cli, "no-such-ref", "--format", "json")
    assert result.exit_code == 2
    document = json.loads(result.output)
    assert document["ok"] is False and document["error"]["code"] == "usage"
    assert document["error"]["message"].startswith("'no-such-ref' is not a commit in the git repository at")


def _binding_at(repo: GitRepo, ref: str) -> tuple[list, dict | None]:
    from catalog.revisions import load_revision

    catalog = load_revision(repo.catalog, ref).valid()
    (binding,) = [b for a in catalog.applications if a.name == "checkout" for b in a.bindings]
    mirror = binding.mirror.model_dump() if binding.mirror is not None else None
    return [(r.version, r.weight) for r in binding.routes], mirror


def test_rollback_restores_the_mirror_of_the_revision_and_removes_one_it_did_not_have(cli, repo: GitRepo) -> None:
    shadow = with_mirror(with_routes(demo_text(), (("1.3.0", 100), ("1.4.0", 0))), "1.4.0", 5)
    hand_commit(repo, shadow, "checkout: shadow 1.4.0 on 5 % of requests", "2026-12-03T10:00:00Z")
    hand_commit(
        repo, with_routes(demo_text(), (("1.3.0", 90), ("1.4.0", 10))), "checkout: canary", "2026-12-04T10:00:00Z"
    )
    assert _rollback(cli, "HEAD~1").exit_code == 0
    assert (
        _binding_at(repo, "HEAD")
        == _binding_at(repo, "HEAD~2")
        == ([("1.3.0", 100), ("1.4.0", 0)], {"version": "1.4.0", "percent": 5})
    )
    assert repo.git("diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD") == "models.yaml"
    assert _rollback(cli, "HEAD~1").exit_code == 0  # the canary again: no mirror
    assert _binding_at(repo, "HEAD") == ([("1.3.0", 90), ("1.4.0", 10)], None)
    assert repo.git("diff", "HEAD~2", "HEAD") == ""  # byte for byte the canary's catalog
