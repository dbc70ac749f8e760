"""A rollout's decisions as commits, in a real git repository (no stack runs: an analysis of the
live traffic finds no data and holds; a passing or failing analysis is given explicitly)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog.domain.rollouts import RolloutRecord, evidence_digest
from catalog.errors import RolloutConflict, RolloutError
from catalog.rollout import decisions
from catalog.rollout.decisions import Delivery
from catalog.rollout.record import read_state
from catalog.rollout.step_analysis import StepAnalysis
from tests.git_catalogs import GitRepo
from tests.rollout.conftest import linear

T0 = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
EVIDENCE = {"versions": [{"version": "1.4.0", "role": "candidate", "verdict": "promote", "reasons": ["fine"]}]}


def passes(state, now) -> StepAnalysis:
    return StepAnalysis("promote", "error_rate: pass", EVIDENCE, {"baseline": "1.3.0"})


def fails(state, now) -> StepAnalysis:
    return StepAnalysis("rollback", "error_rate: 100 % over 1 %", EVIDENCE, {"baseline": "1.3.0"})


def holds(state, now) -> StepAnalysis:
    return StepAnalysis("hold", "error_rate: no data", EVIDENCE, {"baseline": "1.3.0"})


def state_of(repo: GitRepo):
    return read_state(repo.catalog, "checkout", "fraud-scorer")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def routes(repo: GitRepo, revision: str = "HEAD") -> list[tuple[str, int]]:
    from catalog.rollout.record import binding_routes

    return list(binding_routes(read_state(repo.catalog, "checkout", "fraud-scorer", revision).binding))


def trailers(repo: GitRepo, revision: str = "HEAD") -> dict[str, str]:
    text = repo.git("log", "-1", "--format=%(trailers:only,unfold)", revision)
    return dict(line.split(": ", 1) for line in text.splitlines() if line)


def record_at(repo: GitRepo, revision: str = "HEAD") -> RolloutRecord:
    state = read_state(repo.catalog, "checkout", "fraud-scorer", revision)
    assert state.record is not None
    return state.record


def test_start_commits_the_first_step_with_its_trailers_touching_only_the_routes_and_the_record(
    rollout_repo, cli
) -> None:
    repo = rollout_repo()
    before = repo.catalog.read_text(encoding="utf-8")
    done = cli("rollout", "start", "checkout", "--model", "fraud-scorer", "--version", "1.4.0")
    assert done.exit_code == 0, done.output
    assert "start: step 1 of 4 (25 %)" in done.output
    assert routes(repo) == [("1.3.0", 75), ("1.4.0", 25)]
    record = record_at(repo)
    changed = repo.git("show", "--name-only", "--format=", "HEAD").splitlines()
    assert changed == ["models.yaml", f"rollouts/{record.rollout_id}.json"]
    diff = repo.git("diff", "HEAD~1", "HEAD", "--", "models.yaml")
    assert [line for line in diff.splitlines() if line.startswith(("+ ", "- "))] == [
        "-          - {version: 1.3.0, weight: 90}",
        "-          - {version: 1.4.0, weight: 10}",
        "+          - {version: 1.3.0, weight: 75}",
        "+          - {version: 1.4.0, weight: 25}",
    ]
    assert before.replace("weight: 90}", "weight: 75}").replace("weight: 10}\n", "weight: 25}\n", 1) == (
        repo.catalog.read_text(encoding="utf-8")
    )
    t = trailers(repo)
    assert t["Rollout-Id"] == record.rollout_id and t["Step"] == "1/4" and t["Decision"] == "start"
    assert t["Evidence"] == f"rollouts/{record.rollout_id}.json#0 sha256:none"
    assert t["Decided-By"].startswith("modelcat rollout start (t <t@example.com>")
    assert record.base == (("1.3.0", 90), ("1.4.0", 10)) and record.status == "running"
    assert repo.git("status", "--porcelain") == ""


def test_start_is_refused_for_an_unknown_version_and_while_a_rollout_runs(rollout_repo, cli) -> None:
    repo = rollout_repo()
    unknown = cli("rollout", "start", "checkout", "--version", "9.9.9")
    assert unknown.exit_code == 1 and "9.9.9 is not a version of fraud-scorer" in unknown.output
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    head = repo.git("rev-parse", "HEAD")
    again = cli("rollout", "start", "checkout", "--version", "1.4.0", "--format", "json")
    assert again.exit_code == 1
    said = json.loads(again.output)
    assert said["ok"] is False and "is running (step 1 of 4)" in said["error"]["message"]
    assert repo.git("rev-parse", "HEAD") == head


def test_an_all_at_once_binding_is_promoted_by_its_start(rollout_repo, cli) -> None:
    repo = rollout_repo("        rollout:\n          strategy: all_at_once\n")
    done = cli("rollout", "start", "checkout", "--version", "1.4.0")
    assert done.exit_code == 0, done.output
    assert "promote (100 %)" in done.output and "start promotes at once" in done.output
    assert routes(repo) == [("1.4.0", 100)]
    assert record_at(repo).status == "promoted" and trailers(repo)["Decision"] == "promote"


def test_step_is_refused_while_the_step_bakes(rollout_repo, cli) -> None:
    repo = rollout_repo(linear(600))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    head = repo.git("rev-parse", "HEAD")
    done = cli("rollout", "step", "checkout")
    assert done.exit_code == 1 and "not due: baking" in done.output
    assert repo.git("rev-parse", "HEAD") == head


def test_a_held_analysis_does_not_step(rollout_repo) -> None:
    repo = rollout_repo()
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    head = repo.git("rev-parse", "HEAD")
    with pytest.raises(RolloutError, match=r"no step: the analysis holds \(error_rate: no data\)"):
        decisions.step(state_of(repo), holds, "tester", at(5), Delivery())
    assert repo.git("rev-parse", "HEAD") == head


def test_the_live_analysis_without_traffic_holds_naming_the_missing_data(rollout_repo, cli) -> None:
    repo = rollout_repo(linear(0))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    done = cli("rollout", "step", "checkout")
    assert done.exit_code == 1
    assert "no step: the analysis holds" in done.output and "no request reached 1.4.0" in done.output
    assert record_at(repo).last.decision == "start"


def test_passing_analyses_step_then_promote_each_with_its_evidence(rollout_repo) -> None:
    repo = rollout_repo()
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    for k, seconds, percent in ((2, 2, 50), (3, 4, 75)):
        decided = decisions.step(state_of(repo), passes, "tester", at(seconds), Delivery())
        assert decided.decision.step == k and routes(repo)[-1] == ("1.4.0", percent)
        t = trailers(repo)
        assert t["Decision"] == "step" and t["Step"] == f"{k}/4"
        assert t["Evidence"] == f"rollouts/{decided.record.rollout_id}.json#{k - 1} {evidence_digest(EVIDENCE)}"
    with pytest.raises(RolloutError, match="not due"):
        decisions.promote(state_of(repo), passes, "tester", at(4.5), Delivery())
    decisions.promote(state_of(repo), passes, "tester", at(6), Delivery())
    assert routes(repo) == [("1.4.0", 100)]
    record = record_at(repo)
    assert [d.decision for d in record.decisions] == ["start", "step", "step", "promote"]
    assert record.last.evidence == EVIDENCE and record.last.policy["rollout"]["steps"] == [25, 50, 75, 100]
    assert record.last.policy_digest.startswith("sha256:")


def test_promote_is_refused_before_the_last_step_unless_forced(rollout_repo) -> None:
    repo = rollout_repo()
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    with pytest.raises(RolloutError, match=r"the next step is 2 of 4 \(50 %\), not the last"):
        decisions.promote(state_of(repo), passes, "tester", at(5), Delivery())
    decisions.promote(state_of(repo), holds, "tester", at(0.5), Delivery(), force=True)
    last = record_at(repo).last
    assert last.decision == "promote" and last.forced and last.inputs["skipped_steps"] == [50, 75]
    assert "forced" in repo.git("log", "-1", "--format=%s") and routes(repo) == [("1.4.0", 100)]


def test_abort_restores_the_base_exactly_and_removes_the_mirror(rollout_repo, cli) -> None:
    repo = rollout_repo(linear(1, extra="          shadow: {percent: 20}\n"))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    started = read_state(repo.catalog, "checkout", "fraud-scorer")
    assert started.mirror == ("1.4.0", 20) and started.routes == (("1.3.0", 100), ("1.4.0", 0))
    assert trailers(repo)["Step"] == "0/4"
    done = cli("rollout", "abort", "checkout", "--reason", "latency regression")
    assert done.exit_code == 0, done.output
    after = read_state(repo.catalog, "checkout", "fraud-scorer")
    assert after.routes == (("1.3.0", 90), ("1.4.0", 10)) and after.mirror is None
    assert after.record is not None and after.record.status == "aborted"
    assert after.record.last.reason == "latency regression"
    assert repo.git("show", "HEAD~2:models.yaml") == repo.git("show", "HEAD:models.yaml")


def test_the_shadow_step_is_judged_by_the_shadow_analysis_and_holds_without_copies(rollout_repo) -> None:
    from catalog.rollout.step_analysis import analyse_step

    repo = rollout_repo(linear(0, extra="          shadow: {percent: 20}\n"))
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    analysis = analyse_step(state_of(repo), at(5))
    assert analysis.verdict == "hold" and "no copy of a request to 1.4.0 was compared yet" in analysis.reason
    assert analysis.evidence is not None and analysis.evidence["schema"] == "modelcat/shadow-analysis-v1"
    decided = decisions.advance(state_of(repo), lambda s, n: analysis, "tester", at(5), Delivery())
    assert decided.decision.decision == "hold" and decided.decision.mirror == ("1.4.0", 20)
    assert decided.decision.evidence == analysis.evidence and trailers(repo)["Step"] == "0/4"


def test_pause_stops_the_rule_and_resume_bakes_again(rollout_repo) -> None:
    repo = rollout_repo(linear(10))
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    decisions.pause(state_of(repo), "tester", at(1), Delivery(), None)
    assert decisions.advance(state_of(repo), fails, "tester", at(100), Delivery()).decision is None
    with pytest.raises(RolloutError, match="already paused"):
        decisions.pause(state_of(repo), "tester", at(101), Delivery(), None)
    decisions.resume(state_of(repo), "tester", at(200), Delivery(), None)
    waiting = decisions.advance(state_of(repo), fails, "tester", at(205), Delivery())
    assert waiting.decision is None and waiting.move.wait_seconds == pytest.approx(5)
    aborted = decisions.advance(state_of(repo), fails, "tester", at(211), Delivery())
    assert aborted.decision.decision == "abort" and routes(repo) == [("1.3.0", 90), ("1.4.0", 10)]


def test_a_repeated_hold_is_committed_once(rollout_repo) -> None:
    repo = rollout_repo()
    decisions.start(state_of(repo), "1.4.0", "tester", T0, Delivery())
    first = decisions.advance(state_of(repo), holds, "tester", at(2), Delivery())
    head = repo.git("rev-parse", "HEAD")
    again = decisions.advance(state_of(repo), holds, "tester", at(3), Delivery())
    assert first.commit == head and again.commit is None and again.move.decision == "hold"
    assert repo.git("rev-parse", "HEAD") == head


def test_a_hand_edit_of_the_binding_stops_every_command_naming_its_commit(rollout_repo, cli) -> None:
    repo = rollout_repo()
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    edited = (
        repo.catalog.read_text(encoding="utf-8")
        .replace("weight: 75}", "weight: 60}")
        .replace("weight: 25}", "weight: 40}")
    )
    sha = repo.commit(edited, "more traffic on 1.4.0, by hand", "hand")
    for command in (["step"], ["abort"], ["pause"], ["promote", "--force"], ["run", "--max-seconds", "1"]):
        done = cli("rollout", *command, "checkout")
        assert done.exit_code == 1, (command, done.output)
        assert f"commit {sha[:12]} (more traffic on 1.4.0, by hand) changed them by hand" in done.output
        assert "1.3.0=60%, 1.4.0=40%, not 1.3.0=75%, 1.4.0=25%" in done.output
        assert repo.git("rev-parse", "HEAD") == sha
    with pytest.raises(RolloutConflict):
        decisions.abort(state_of(repo), "tester", at(1), Delivery(), None)


def test_uncommitted_changes_to_the_catalog_are_not_committed_with_a_decision(rollout_repo, cli) -> None:
    repo = rollout_repo()
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    head = repo.git("rev-parse", "HEAD")
    text = repo.catalog.read_text(encoding="utf-8")
    repo.catalog.write_text(text.replace("Card checkout;", "Card checkout (edited);"), encoding="utf-8")
    done = cli("rollout", "abort", "checkout")
    assert done.exit_code == 1 and "has changes that are not committed" in done.output
    assert repo.git("rev-parse", "HEAD") == head and "(edited)" in repo.catalog.read_text(encoding="utf-8")


def test_a_decision_on_a_branch_leaves_the_working_tree_and_writes_a_pr_description(
    rollout_repo, cli, tmp_path
) -> None:
    repo = rollout_repo()
    head, text = repo.git("rev-parse", "HEAD"), repo.catalog.read_text(encoding="utf-8")
    pr = tmp_path / "pr.md"
    done = cli(
        "rollout", "start", "checkout", "--version", "1.4.0", "--branch", "rollout-1.4.0", "--pr-description", pr
    )
    assert done.exit_code == 0, done.output
    assert repo.git("rev-parse", "HEAD") == head and repo.catalog.read_text(encoding="utf-8") == text
    assert routes(repo, "rollout-1.4.0") == [("1.3.0", 75), ("1.4.0", 25)]
    assert trailers(repo, "rollout-1.4.0")["Decision"] == "start"
    description = pr.read_text(encoding="utf-8")
    assert "# rollout checkout/fraud-scorer 1.4.0: start: step 1 of 4 (25 %)" in description
    assert "Rollout-Id: checkout.fraud-scorer.1.4.0." in description and "Merge this pull request" in description
    refused = cli("rollout", "run", "checkout", "--apply", "--branch", "rollout-1.4.0")
    assert refused.exit_code == 2 and "the merge of the pull request applies" in refused.output


def test_a_malformed_record_is_an_error_naming_its_file(rollout_repo, cli) -> None:
    repo = rollout_repo()
    bad = Path(repo.root / "rollouts" / "checkout.fraud-scorer.1.4.0.20261206T200000Z.json")
    bad.parent.mkdir()
    bad.write_text('{"schema": "modelcat/rollout-v1", "rollout_id": "x"}\n', encoding="utf-8")
    repo.git("add", str(bad))
    repo.git("commit", "-q", "-m", "a broken record")
    done = cli("rollout", "status", "checkout")
    assert done.exit_code == 1
    assert "rollouts/checkout.fraud-scorer.1.4.0.20261206T200000Z.json@" in done.output
    assert "is not a rollout record" in done.output
