"""`modelcat rollout replay`: every decision re-derived from its recorded evidence and policy; a
decision that does not reproduce is named (exit 1); today's policy shows what would now differ."""

from __future__ import annotations

import json
from dataclasses import replace

from tests.git_catalogs import demo_text
from tests.rollout.recorded import (
    T3,
    hand_commit,
    observations,
    recorded_repository,
    started_repository,
    with_routes,
)

ROLLOUT = "checkout.fraud-scorer.1.4.0.20261206T201000Z"


def _replay(cli, rollout: str = ROLLOUT) -> tuple[int, dict]:
    result = cli("rollout", "replay", rollout, "--format", "json")
    return result.exit_code, json.loads(result.output)


def test_replay_reproduces_every_decision_the_controller_recorded(cli, tmp_path, monkeypatch) -> None:
    recorded_repository(tmp_path / "catalog", monkeypatch)
    code, document = _replay(cli)
    assert code == 0, document
    assert document["ok"] is True and document["schema"] == "modelcat/rollout-replay-v1"
    assert document["status"] == "promoted"
    start, hold, promote = document["decisions"]
    assert (start["decision"], start["by_person"], start["replayed"]) == ("start", True, None)
    assert (hold["decision"], hold["verdict"], hold["reproduces"]) == ("hold", "hold", True)
    assert hold["replayed"]["decision"] == "hold"
    assert (promote["verdict"], promote["replayed"]["decision"], promote["reproduces"]) == ("promote", "promote", True)
    assert promote["replayed"]["routes"] == [{"version": "1.4.0", "weight": 100}]
    assert document["reproduced"] == 2 and document["not_reproduced"] == [] and document["differ_today"] == []


def test_replay_names_a_decision_its_evidence_does_not_give_and_exits_1(cli, tmp_path, monkeypatch) -> None:
    _, recorder = recorded_repository(tmp_path / "catalog", monkeypatch)
    record = recorder.record
    assert record is not None
    promote = record.decisions[2]
    bad = json.loads(json.dumps(promote.evidence))
    bad["observations"] = json.loads(json.dumps(_observations_json(errors=300)))
    tampered = replace(record, decisions=(*record.decisions[:2], replace(promote, evidence=bad)))
    recorder.commit_record(tampered, "2026-12-06T21:00:00Z")
    code, document = _replay(cli)
    assert code == 1
    assert document["ok"] is False and document["not_reproduced"] == [2]
    promoted = document["decisions"][2]
    assert promoted["verdict"] == "rollback" and promoted["replayed"]["decision"] == "abort"
    assert any("its evidence gives the verdict rollback, it recorded promote" in d for d in promoted["differences"])
    assert any("is not the one its commit names" in d for d in promoted["differences"])  # the Evidence trailer's digest
    text = cli("rollout", "replay", ROLLOUT)
    assert text.exit_code == 1
    assert (
        "#2 2026-12-06T20:40:00Z promote by modelcat rollout run (pid 4242 on ci-runner): DOES NOT REPRODUCE"
        in text.output
    )
    assert "error: decision #2 (promote at 2026-12-06T20:40:00Z) does not reproduce" in text.output


def test_replay_names_a_recorded_move_the_rule_does_not_make(cli, tmp_path, monkeypatch) -> None:
    _, recorder = recorded_repository(tmp_path / "catalog", monkeypatch)
    record = recorder.record
    assert record is not None
    hold = record.decisions[1]
    stepped = replace(hold, decision="step", routes=(("1.3.0", 50), ("1.4.0", 50)))
    recorder.commit_record(replace(record, decisions=(record.decisions[0], stepped, record.decisions[2])), T3)
    code, document = _replay(cli)
    assert code == 1 and document["not_reproduced"] == [1]
    assert document["decisions"][1]["differences"] == ["the rule says hold (the analysis holds), not step"]


def test_replay_lists_the_decisions_todays_policy_would_make_otherwise(cli, tmp_path, monkeypatch) -> None:
    repo, _ = recorded_repository(tmp_path / "catalog", monkeypatch)
    text = with_routes(demo_text(), (("1.4.0", 100),)).replace(
        "step_percent: 10\n          interval_seconds: 60\n", "step_percent: 10\n          interval_seconds: 3600\n"
    )
    hand_commit(repo, text, "checkout: bake an hour per step", "2026-12-07T09:00:00Z")
    code, document = _replay(cli)
    assert code == 0, document  # each decision still reproduces under its own policy
    assert document["differ_today"] == [1, 2]
    promote = document["decisions"][2]
    assert promote["today"]["decision"] is None and promote["today_differs"] is True
    assert "interval_seconds 60 then, 3600 today" in promote["today_differences"]
    result = cli("rollout", "replay", ROLLOUT)
    assert "today: nothing yet (baking: 1800 of 3600 s), because" in result.output
    assert (
        result.output.splitlines()[-1]
        == "replay: 2 of 2 re-derived decisions reproduce; 2 would differ under today's policy"
    )


def test_replay_lists_a_persons_decisions_without_deriving_them(cli, tmp_path, monkeypatch) -> None:
    _, recorder = started_repository(tmp_path / "catalog", monkeypatch)
    recorder.person("pause", "2026-12-06T20:12:00Z", "modelcat rollout pause (alice <alice@example.com>)", "lunch")
    recorder.person("resume", "2026-12-06T20:30:00Z", "modelcat rollout resume (alice <alice@example.com>)", "back")
    recorder.decide("2026-12-06T20:41:00Z", observations((450, 50)))
    recorder.person(
        "promote",
        "2026-12-06T20:45:00Z",
        "modelcat rollout promote --force (bob <bob@example.com>)",
        "ship it",
        forced=True,
    )
    code, document = _replay(cli, recorder.record.rollout_id)
    assert code == 0, document
    kinds = [(d["decision"], d["by_person"]) for d in document["decisions"]]
    assert kinds == [("start", True), ("pause", True), ("resume", True), ("hold", False), ("promote", True)]
    text = cli("rollout", "replay", recorder.record.rollout_id).output
    assert (
        "promote by modelcat rollout promote --force (bob <bob@example.com>): decided by a person (forced), not re-derived"
        in text
    )


def test_replay_of_an_unknown_rollout_exits_1_naming_its_file(cli, tmp_path, monkeypatch) -> None:
    recorded_repository(tmp_path / "catalog", monkeypatch)
    code, document = _replay(cli, "checkout.fraud-scorer.9.9.9.20261206T201000Z")
    assert code == 1 and document["ok"] is False
    assert (
        "rollouts/checkout.fraud-scorer.9.9.9.20261206T201000Z.json does not exist at" in document["error"]["message"]
    )


def _observations_json(errors: int) -> dict:
    from catalog.analysis.evidence import observations_json

    return observations_json(observations((9000, 1000), errors=errors))


def test_replay_names_a_decision_whose_evidence_cannot_be_read_back(cli, tmp_path, monkeypatch) -> None:
    _, recorder = recorded_repository(tmp_path / "catalog", monkeypatch)
    record = recorder.record
    assert record is not None
    hold = record.decisions[1]
    broken = {k: v for k, v in (hold.evidence or {}).items() if k != "plan"}
    recorder.commit_record(
        replace(record, decisions=(record.decisions[0], replace(hold, evidence=broken), record.decisions[2])), T3
    )
    code, document = _replay(cli)
    assert code == 1 and document["not_reproduced"] == [1]
    assert "its policy or evidence cannot be read back: KeyError 'plan'" in document["decisions"][1]["differences"]


def test_replay_reads_the_verdict_of_an_analysis_that_keeps_no_observations(cli, tmp_path, monkeypatch) -> None:
    _, recorder = started_repository(tmp_path / "catalog", monkeypatch)
    shadow = {
        "schema": "modelcat/shadow-analysis-v1",
        "counts": {"copies": 1200, "compared": 1000, "agreed": 871, "agreement": 0.871},
        "versions": [
            {"version": "1.3.0", "role": "baseline", "units": 900, "requests": 900, "verdict": None, "metrics": []},
            {"version": "1.4.0", "role": "candidate", "units": 900, "requests": 900, "verdict": "rollback",
             "metrics": [{"name": "agreement", "vote": "fail"}]},
        ],
    }  # fmt: skip
    recorder.decide_on_document("2026-12-06T20:21:00Z", shadow)
    code, document = _replay(cli, recorder.record.rollout_id)
    assert code == 0, document
    aborted = document["decisions"][1]
    assert (aborted["decision"], aborted["verdict"], aborted["verdict_source"]) == ("abort", "rollback", "document")
    assert aborted["replayed"]["decision"] == "abort" and aborted["reproduces"] is True
    text = cli("rollout", "replay", recorder.record.rollout_id).output
    assert "reproduced (verdict rollback, read from its analysis document (no observations to decide again))" in text
    history = cli("rollout", "history", "checkout").output
    assert "evidence: rollback on 1,200 mirrored copies (agreement 87.1 %); votes: agreement fail [rollouts/" in history
