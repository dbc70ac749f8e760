"""`modelcat review BASE` on a real git repository holding the demo catalog: the issue's flow
(`review HEAD~1` after a commit that raises a canary, or swaps a released digest), the comment,
SARIF and JSON it writes, and its exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.git_catalogs import (
    FRAUD_1_3_0,
    GitRepo,
    add_version,
    demo_text,
    fraud_scorer_bytes,
    git_env,
    swap_artifact,
)
from tests.helpers import DEMO, NOW, ROOT, run_review, with_demo_keys
from tests.sarif_validators import multitool_problems, sarif_errors

CANARY = ("{version: 1.3.0, weight: 90}", "{version: 1.4.0, weight: 10}")


def canary(weights: tuple[int, int]) -> str:
    text = demo_text()
    for old, weight in zip(CANARY, weights, strict=True):
        assert old in text
        text = text.replace(old, old.replace(old.split("weight: ")[1].rstrip("}"), str(weight)), 1)
    return text


def canary_taken_back(repo: GitRepo) -> None:
    """Commit the demo with its canary taken back (1.3.0 100 %, 1.4.0 0 %): from there the canary's
    next step is 10 % again, so 50/50 is a jump past it."""
    repo.commit(canary((100, 0)), "checkout: fraud-scorer 1.4.0 back to 0 %", "taken-back")


def test_an_unchanged_catalog_passes_and_says_so(cli, repo: GitRepo) -> None:
    code, comment, sarif, report = run_review(cli, "HEAD")
    assert code == 0
    assert comment.startswith("## ✅ modelcat review: nothing blocks this change")
    assert "The catalog is unchanged." in comment
    assert report["ok"] and report["diff"]["empty"]
    assert sarif_errors(sarif) == [] and sarif["runs"][0]["results"] == []


def test_a_canary_raised_one_step_passes_with_what_changes(cli, repo: GitRepo) -> None:
    repo.commit(canary((80, 20)), "checkout: fraud-scorer 1.4.0 to 20 %", "step")
    code, comment, sarif, report = run_review(cli, "HEAD~1")
    assert code == 0, comment
    assert comment.startswith("## ✅ modelcat review: nothing blocks this change")
    assert "Valid, every artifact the change adds or alters verified, no policy denies it." in comment
    assert "fraud-scorer: weights 1.3.0 90 -> 80, 1.4.0 10 -> 20" in comment
    assert "| update | checkout: router | fraud-scorer 1.3.0 90 -> 80 %, fraud-scorer 1.4.0 10 -> 20 % |" in comment
    assert report["blast_radius"]["counts"] == {"create": 0, "update": 1, "replace": 0, "delete": 0}
    assert sarif_errors(sarif) == []


def test_a_canary_raised_past_its_step_is_blocked_on_its_line(cli, repo: GitRepo) -> None:
    canary_taken_back(repo)
    repo.commit(canary((50, 50)), "checkout: fraud-scorer 1.4.0 to 50 %", "jump")
    code, comment, sarif, report = run_review(cli, "HEAD~1")
    assert code == 1
    assert comment.startswith("## ❌ modelcat review: 1 problem blocks this change")
    assert (
        "checkout: fraud-scorer 1.4.0 goes from 0% to 50% of the traffic in one change, "
        "past its canary rollout's next step of 10%"
    ) in comment
    assert sarif_errors(sarif) == []
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == "MC012" and result["level"] == "error"
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert Path("models.yaml").read_text().splitlines()[line - 1].strip() == "- model: fraud-scorer"
    assert [f["rule"] for f in report["policy"]["findings"]] == ["MC012"]


def test_a_swapped_released_digest_is_blocked(cli, repo: GitRepo) -> None:
    data = fraud_scorer_bytes(seed=77)
    repo.add_artifact(data)
    text, new_hex = swap_artifact(demo_text(), FRAUD_1_3_0, data)
    repo.catalog.write_text(text, encoding="utf-8")
    signed = cli("sign", "fraud-scorer", "--version", "1.3.0", "--key", ROOT / "keys" / "demo-release.pem")
    assert signed.exit_code == 0, signed.output  # production serves signed versions: signed again, as released
    repo.git("add", "artifacts")
    repo.commit(repo.catalog.read_text(encoding="utf-8"), "fraud-scorer 1.3.0: retrained in place", "swap")
    code, comment, sarif, report = run_review(cli, "HEAD~1")
    assert code == 1
    assert "| artifacts the change touches | ✅ | 1 verified |" in comment  # the new bytes are real and match
    assert (
        f"fraud-scorer 1.3.0 served traffic on the base revision (checkout) but its digest changed from sha256:{FRAUD_1_3_0} to sha256:{new_hex}"
        in comment
    )
    assert "| replace | checkout: fraud-scorer 1.3.0 endpoint |" in comment
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["MC008"]
    assert report["diff"]["versions_changed"][0]["served_digest_swap"] is True


def test_an_artifact_that_does_not_verify_blocks(cli, repo: GitRepo) -> None:
    data = fraud_scorer_bytes(seed=5)
    text = add_version(demo_text(), data, "1.5.0", "      - version: 1.4.0")  # its file is not in the repository
    Path("models.yaml").write_text(text)
    code, comment, sarif, report = run_review(cli, "HEAD")
    assert code == 1
    assert "| artifacts the change touches | ❌ | 1 of 1 failed |" in comment
    assert [a["version"] for a in report["artifacts"]] == ["1.5.0"] and not report["artifacts"][0]["ok"]
    (result,) = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "VERIFY"]
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert Path("models.yaml").read_text().splitlines()[line - 1].strip() == "- version: 1.5.0"
    assert sarif_errors(sarif) == []


def test_an_invalid_catalog_is_blocked_with_its_lines(cli, repo: GitRepo) -> None:
    Path("models.yaml").write_text(
        demo_text().replace("{version: 1.4.0, weight: 10}", "{version: 1.4.0, weight: ten}", 1)
    )
    code, comment, sarif, report = run_review(cli, "HEAD")
    assert code == 1
    assert "### Validation" in comment and "weight" in comment
    assert report["problems"] and report["problems"][0]["line"] > 0
    assert sarif_errors(sarif) == []
    assert sarif["runs"][0]["results"][0]["ruleId"] == "VALIDATE"


def test_a_waiver_lets_a_step_too_big_through(cli, repo: GitRepo) -> None:
    waivers = Path("policies/waivers.yaml")
    waivers.write_text(
        "waivers:\n"
        "  - rule: MC012\n"
        "    subject: binding/checkout/fraud-scorer\n"
        "    reason: incident ML-7, 1.3.0 degrades; accelerate the rollout\n"
        "    expires: 2026-12-31\n"
    )
    canary_taken_back(repo)
    Path("models.yaml").write_text(canary((50, 50)))
    code, comment, _, report = run_review(cli, "HEAD")
    assert code == 0, comment
    assert [f["rule"] for f in report["policy"]["waived"]] == ["MC012"]
    assert "incident ML-7" in comment


def _all_versions() -> list[tuple[str, str, str]]:
    from catalog.validate import load_catalog

    return [(m.name, v.version, v.stage) for m in load_catalog(DEMO).models for v in m.versions]


def _production_versions() -> list[tuple[str, str]]:
    return [(m, v) for m, v, stage in _all_versions() if stage == "production"]


def test_a_bad_revision_is_a_usage_error(cli, repo: GitRepo) -> None:
    unknown = cli("review", "no-such-branch")
    assert unknown.exit_code == 2
    assert "'no-such-branch' is not a commit in the git repository" in unknown.output
    dashed = cli("review", "--", "-x")
    assert dashed.exit_code == 2 and "'-x' is not a revision" in dashed.output
    assert not Path("review").exists()  # nothing written


def test_without_policies_the_review_stops_before_writing(cli, repo: GitRepo) -> None:
    result = cli("review", "HEAD", "--policies", "nowhere")
    assert result.exit_code == 2 and "--policies nowhere: no such folder" in result.output
    assert not Path("review").exists()


def test_a_first_catalog_has_an_empty_base(cli, repo: GitRepo) -> None:
    repo.git("checkout", "-q", "--orphan", "fresh")
    repo.git("rm", "-q", "--cached", "models.yaml")
    repo.git("commit", "-q", "-m", "no catalog yet")
    code, comment, _, report = run_review(cli, "HEAD")
    assert "does not exist at HEAD" in comment
    assert sorted(report["diff"]["models_added"]) == sorted({m for m, _, _ in _all_versions()})
    assert report["blast_radius"]["counts"]["create"] > 0
    # everything is new, so every production version skips the candidate stage (MC007)
    production = sorted(f"version/{m}@{v}" for m, v in _production_versions())
    denied = sorted(f["subject"] for f in report["policy"]["findings"] if f["severity"] == "deny")
    assert code == 1 and denied == production


def test_changed_policies_judge_every_subject_again(cli, repo: GitRepo) -> None:
    """Stricter settings in the same pull request re-judge what the catalog change did not touch:
    a maximum step of 5 % makes the (unchanged) canary and linear bindings findings."""
    settings = Path("policies/settings.yaml")
    settings.write_text(settings.read_text().replace("max_step_percent: 25", "max_step_percent: 5"))
    code, comment, _, report = run_review(cli, "HEAD")
    assert code == 1 and "differs from HEAD: every subject is judged" in comment
    stepped = [f["subject"] for f in report["policy"]["findings"] if f["rule"] == "MC006"]
    assert stepped == ["binding/checkout/fraud-scorer", "binding/storefront/recommender"]


def test_only_what_the_change_touches_is_judged(cli, repo: GitRepo) -> None:
    """A finding on a subject the change does not touch is left to `modelcat policy check`: here
    the demo's all-at-once search-ranker binding (MC010, a warning) stays out of a canary step's review."""
    Path("models.yaml").write_text(canary((80, 20)))
    _, _, _, report = run_review(cli, "HEAD")
    assert "binding/storefront/search-ranker" not in {f["subject"] for f in report["policy"]["findings"]}
    full = cli("policy", "check", "--now", NOW, "--format", "json")
    assert "binding/storefront/search-ranker" in {f["subject"] for f in json.loads(full.output)["findings"]}


def test_review_sarif_uri_is_relative_to_the_repository_root(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog in a subfolder of the repository (teams/risk/), reviewed from that folder: the
    SARIF file names the repository-relative path, as code scanning needs to annotate the file."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = GitRepo(tmp_path / "mono")
    team = repo.root / "teams" / "risk"
    shutil.copytree(DEMO.parent / "artifacts" / "sha256", team / "artifacts" / "sha256")
    shutil.copytree(ROOT / "policies", team / "policies")
    with_demo_keys(team)
    (team / "models.yaml").write_text(canary((100, 0)))  # the canary taken back: 50/50 is a jump
    repo.git("add", "teams")
    repo.git("commit", "-q", "-m", "the risk team's catalog")
    monkeypatch.chdir(team)
    Path("models.yaml").write_text(canary((50, 50)))
    code, _, sarif, _ = run_review(cli, "HEAD")
    assert code == 1
    run = sarif["runs"][0]
    (result,) = run["results"]
    assert result["ruleId"] == "MC012"
    where = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert where == {"uri": "teams/risk/models.yaml", "uriBaseId": "%SRCROOT%"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.root.resolve().as_uri() + "/"


@pytest.mark.slow
def test_review_sarif_passes_microsofts_validator(cli, repo: GitRepo, tmp_path: Path) -> None:
    """A review with a policy deny (MC012), an artifact that does not verify (VERIFY) and an unused
    waiver (MC901; the changed policies folder has every subject judged: MC010's warning too); and
    one of an invalid catalog (VALIDATE): no error, no warning."""
    Path("policies/waivers.yaml").write_text(
        "waivers:\n"
        "  - rule: MC010\n"
        "    subject: binding/checkout/fraud-scorer\n"
        "    reason: no finding to waive\n"
        "    expires: 2027-01-31\n"
    )
    canary_taken_back(repo)
    text = add_version(canary((50, 50)), fraud_scorer_bytes(seed=5), "1.5.0", "      - version: 1.4.0")
    Path("models.yaml").write_text(text)
    code, _, sarif, _ = run_review(cli, "HEAD")
    assert code == 1
    rules = {r["id"]: r for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == {"MC012", "VERIFY", "MC901", "MC010"}
    assert (rules["VERIFY"]["name"], rules["MC901"]["name"]) == ("ArtifactVerifies", "WaiverUnused")
    assert multitool_problems(sarif, tmp_path / "validator") == []
    Path("models.yaml").write_text(demo_text().replace("{version: 1.4.0, weight: 10}", "{version: 1.4.0, weight: ten}"))
    code, _, sarif, _ = run_review(cli, "HEAD")
    assert code == 1 and sarif["runs"][0]["results"][0]["ruleId"] == "VALIDATE"
    assert [r["name"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]] == ["CatalogValidates"]
    assert multitool_problems(sarif, tmp_path / "validator") == []


def test_review_shows_the_rollout_commits_of_the_change_as_such(cli, tmp_path, monkeypatch) -> None:
    from tests.rollout.recorded import recorded_repository

    recorded_repository(tmp_path / "rolled", monkeypatch)
    rollout = "checkout.fraud-scorer.1.4.0.20261206T201000Z"
    code, comment, _, report = run_review(cli, "HEAD~3")  # the commit by hand, then start, hold, promote
    assert code == 1  # 1.4.0 from 0 to 100 % in one change: MC012, the rollout's steps were separate commits
    lines = [c["line"] for c in report["rollout_commits"]]
    assert [c["decision"] for c in report["rollout_commits"]] == ["start", "hold", "promote"]
    assert lines[0].endswith(
        f"rollout {rollout} step 1 of 2 (start), by modelcat rollout start (alice <alice@example.com>), no analysis read: start: 10 % on 1.4.0"
    )
    assert (
        f"rollout {rollout} step 2 of 2 (promote), by modelcat rollout run (pid 4242 on ci-runner), "
        "evidence: promote on 10,000 units (1.3.0: 9,000 units, 18,000 requests; 1.4.0: 1,000 units, 2,000 requests); "
        "votes: error_rate pass, p99_latency pass: the analysis passes: 100 %"
    ) in lines[2]
    assert "### Rollout and rollback commits" in comment
    assert f"- {lines[1]}" in comment.splitlines()
    assert "checkout: 1.3.0 back to 100 %" not in comment  # a commit by hand is not a rollout's
    text = cli("review", "HEAD~1", "--now", NOW).output
    assert f"rollout {rollout} step 2 of 2 (promote)" in text and "(hold)" not in text


def test_review_shows_a_rollback_commit_as_such_and_commits_by_hand_as_none(
    cli, repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in git_env().items():
        if key.startswith("GIT_"):
            monkeypatch.setenv(key, value)  # who rolls back: t <t@example.com>, and no user configuration
    repo.commit(canary((80, 20)), "checkout: fraud-scorer 1.4.0 to 20 %", "step")
    _, comment, _, report = run_review(cli, "HEAD~1")
    assert report["rollout_commits"] == [] and "Rollout and rollback commits" not in comment
    assert cli("rollback", "checkout", "--model", "fraud-scorer", "--to", "base").exit_code == 0
    code, comment, _, report = run_review(cli, "HEAD~2")
    assert code == 0, comment
    (rollback,) = report["rollout_commits"]
    base = repo.git("rev-parse", "base")
    assert (rollback["kind"], rollback["rollback_to"]) == ("rollback", f"base {base}")
    assert rollback["line"].endswith(
        f"rollback to base {base}, by modelcat rollback (t <t@example.com>): Restores the routes of base"
        f" ({base[:12]}): 1.3.0 90 %, 1.4.0 10 %; they were 1.3.0 80 %, 1.4.0 20 %."
    )
    assert f"- {rollback['line']}" in comment.splitlines()


def test_review_of_a_controllers_promote_commit_has_no_mc012_finding(cli, tmp_path, monkeypatch) -> None:
    """The controller's promote (1.4.0 from the canary's 10 % to 100 %, its plan's next and last
    step) as CI reviews it: MC012 runs and judges it one step, as the controller does."""
    from tests.rollout.recorded import recorded_repository

    repo, _ = recorded_repository(tmp_path / "rolled", monkeypatch)
    assert repo.git("log", "-1", "--format=%(trailers:key=Decision,valueonly)") == "promote"
    code, comment, sarif, report = run_review(cli, "HEAD~1")  # the hold commit (1.3.0 90 %, 1.4.0 10 %) as the base
    assert code == 0, comment
    assert "fraud-scorer: weights 1.3.0 90 -> (none), 1.4.0 10 -> 100" in comment
    assert next(r for r in report["policy"]["rules"] if r["id"] == "MC012")["skipped"] is None  # it ran
    assert [f for f in report["policy"]["findings"] if f["rule"] == "MC012"] == []
    assert "MC012" not in {r["ruleId"] for r in sarif["runs"][0]["results"]}
    assert [c["decision"] for c in report["rollout_commits"]] == ["promote"]
