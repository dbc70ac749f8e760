"""`modelcat rollout history`: the binding's periods from git, whoever changed them: a rollout's
decisions (Decided-By, Decision, evidence), a rollback, or a commit by hand in an ordinary PR."""

from __future__ import annotations

import json

from tests.git_catalogs import demo_text
from tests.rollout.recorded import T0, T1, T2, T3, T4, hand_commit, recorded_repository, with_mirror, with_routes

ROLLOUT = "checkout.fraud-scorer.1.4.0.20261206T201000Z"


def _history(cli, *args: str) -> dict:
    result = cli("rollout", "history", "checkout", "--model", "fraud-scorer", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_history_gives_each_period_with_who_decided_it_why_and_the_evidence(cli, tmp_path, monkeypatch) -> None:
    recorded_repository(tmp_path / "catalog", monkeypatch)
    document = _history(cli)
    assert document["ok"] is True and document["schema"] == "modelcat/rollout-history-v1"
    (binding,) = document["bindings"]
    periods = binding["periods"]
    assert [(p["since"], p["until"]) for p in periods] == [(T0, T1), (T1, T2), (T2, T4), (T4, None)]
    assert [[(r["version"], r["weight"]) for r in p["routes"]] for p in periods] == [
        [("1.3.0", 90), ("1.4.0", 10)],
        [("1.3.0", 100)],
        [("1.3.0", 90), ("1.4.0", 10)],
        [("1.4.0", 100)],
    ]
    first, by_bob, started, promoted = (p["change"] for p in periods)
    assert (first["kind"], first["by_hand"], first["decided_by"]) == ("hand", True, "t <t@example.com>")
    assert (by_bob["kind"], by_bob["decided_by"]) == ("hand", "bob <bob@example.com>")
    assert by_bob["reason"] == "checkout: 1.3.0 back to 100 % while 1.4.0 is checked"
    assert started["kind"] == "rollout" and started["by_hand"] is False
    assert started["decided_by"] == "modelcat rollout start (alice <alice@example.com>)"
    assert (started["decision"], started["rollout_id"], started["step"]) == ("start", ROLLOUT, "1/2")
    assert started["evidence"] is None
    assert promoted["decided_by"] == "modelcat rollout run (pid 4242 on ci-runner)"
    assert (promoted["decision"], promoted["step"], promoted["reason"]) == (
        "promote",
        "2/2",
        "the analysis passes: 100 %",
    )
    assert promoted["evidence_ref"].startswith(f"rollouts/{ROLLOUT}.json#2 sha256:")
    assert promoted["evidence"] == {
        "verdict": "promote",
        "units": 10000,
        "versions": [
            {"version": "1.3.0", "units": 9000, "requests": 18000},
            {"version": "1.4.0", "units": 1000, "requests": 2000},
        ],
        "votes": [{"metric": "error_rate", "vote": "pass"}, {"metric": "p99_latency", "vote": "pass"}],
        "copies": None,
        "agreement": None,
    }
    (hold,) = periods[2]["events"]  # a decision that left the routes alone
    assert (hold["decision"], hold["time"], hold["evidence"]["verdict"]) == ("hold", T3, "hold")
    assert hold["reason"] == "the analysis holds"
    assert all(not p["events"] for p in (periods[0], periods[1], periods[3]))


def test_history_covers_a_weight_change_by_hand_after_the_rollout(cli, tmp_path, monkeypatch) -> None:
    repo, _ = recorded_repository(tmp_path / "catalog", monkeypatch)
    later = "2026-12-07T08:00:00Z"
    text = with_routes(demo_text(), (("1.3.0", 100),)).replace(
        "          - {version: 1.3.0, weight: 100}\n",
        "          - {version: 1.4.0, weight: 80}\n          - {version: 1.3.0, weight: 20}\n",
    )
    hand_commit(repo, text, "checkout: 20 % back on 1.3.0 (INC-42)", later, author="carol <carol@example.com>")
    periods = _history(cli)["bindings"][0]["periods"]
    assert periods[-2]["until"] == later
    last = periods[-1]
    assert (last["since"], last["until"]) == (later, None)
    assert [(r["version"], r["weight"]) for r in last["routes"]] == [("1.4.0", 80), ("1.3.0", 20)]
    assert last["change"]["by_hand"] is True
    assert (last["change"]["decided_by"], last["change"]["reason"]) == (
        "carol <carol@example.com>",
        "checkout: 20 % back on 1.3.0 (INC-42)",
    )


def test_history_as_text_reads_as_periods_until_now(cli, tmp_path, monkeypatch) -> None:
    recorded_repository(tmp_path / "catalog", monkeypatch)
    result = cli("rollout", "history", "checkout")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "checkout/fraud-scorer: 4 periods"
    assert f"{T1} → {T2}  1.3.0 100 %" in lines
    assert f"{T4} → now  1.4.0 100 %" in lines
    assert any(line.strip().startswith("by hand, bob <bob@example.com> (") for line in lines)
    promote = next(i for i, line in enumerate(lines) if line.strip().startswith("promote by modelcat rollout run"))
    assert (
        lines[promote + 1].strip().startswith("evidence: promote on 10,000 units (1.3.0: 9,000 units, 18,000 requests")
    )
    assert f"rollouts/{ROLLOUT}.json#2]" in lines[promote + 1]


def test_history_of_an_application_the_log_never_names_exits_2(cli, tmp_path, monkeypatch) -> None:
    recorded_repository(tmp_path / "catalog", monkeypatch)
    result = cli("rollout", "history", "chekout", "--format", "json")
    assert result.exit_code == 2
    document = json.loads(result.output)
    assert document["ok"] is False
    assert "no application 'chekout' in the history of models.yaml" in document["error"]["message"]
    assert document["error"]["message"].endswith("models.yaml; did you mean 'checkout'?")


def test_history_shows_a_mirror_and_notes_a_revision_it_cannot_read(cli, tmp_path, monkeypatch) -> None:
    repo, _ = recorded_repository(tmp_path / "catalog", monkeypatch)
    promoted = with_routes(demo_text(), (("1.4.0", 100),))
    hand_commit(repo, promoted.replace("apiVersion:", "apiVersion: [", 1), "oops", "2026-12-07T08:00:00Z")
    broken = repo.git("rev-parse", "HEAD")
    shadow = with_mirror(with_routes(demo_text(), (("1.4.0", 100), ("1.3.0", 0))), "1.3.0", 5)
    hand_commit(repo, shadow, "checkout: mirror 5 % to 1.3.0 to compare", "2026-12-07T09:00:00Z")
    document = _history(cli)
    last = document["bindings"][0]["periods"][-1]
    assert last["mirror"] == {"version": "1.3.0", "percent": 5} and last["since"] == "2026-12-07T09:00:00Z"
    assert [(r["version"], r["weight"]) for r in last["routes"]] == [("1.4.0", 100), ("1.3.0", 0)]
    assert document["notes"] == [f"models.yaml@{broken[:12]} is not a valid catalog: its changes are not shown"]
    text = cli("rollout", "history", "checkout").output
    assert "2026-12-07T09:00:00Z → now  1.4.0 100 %, 1.3.0 0 %; mirror 5 % to 1.3.0" in text
