"""``modelcat rollout status``: where a rollout stands, in words that fit its state (a running step,
a shadow step in force, a rollout aborted back to its base or promoted)."""

from __future__ import annotations

import json

from tests.rollout.conftest import linear

SHADOW = "          shadow: {percent: 20}\n"


def status(cli) -> tuple[str, dict]:
    text = cli("rollout", "status", "checkout").output
    return text, json.loads(cli("rollout", "status", "checkout", "--format", "json").output)["rollout"]


def test_status_of_an_aborted_rollout_says_it_is_back_on_the_base_routes(rollout_repo, cli) -> None:
    rollout_repo(linear(600))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    assert cli("rollout", "abort", "checkout").exit_code == 0
    text, doc = status(cli)
    assert "of 1.4.0: aborted: back on the base routes (1.3.0 90 %, 1.4.0 10 %)" in text, text
    assert "shadow step" not in text
    assert doc["stage"] == "aborted: back on the base routes (1.3.0 90 %, 1.4.0 10 %)"


def test_status_of_an_aborted_shadow_step_says_it_is_back_on_the_base_routes(rollout_repo, cli) -> None:
    rollout_repo(linear(600, extra=SHADOW))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    assert cli("rollout", "abort", "checkout").exit_code == 0
    text, doc = status(cli)
    assert "aborted: back on the base routes (1.3.0 90 %, 1.4.0 10 %)" in text and "shadow step" not in text
    assert doc["step"] == 0 and doc["mirror"] is None


def test_status_of_a_promoted_rollout_says_promoted(rollout_repo, cli) -> None:
    rollout_repo(linear(600))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    assert cli("rollout", "promote", "checkout", "--force").exit_code == 0
    text, doc = status(cli)
    assert "of 1.4.0: promoted: 100 % on 1.4.0 (plan [25, 50, 75, 100])" in text, text
    assert doc["stage"] == "promoted: 100 % on 1.4.0"


def test_status_of_a_shadow_step_in_force_still_says_shadow_step(rollout_repo, cli) -> None:
    rollout_repo(linear(600, extra=SHADOW))
    assert cli("rollout", "start", "checkout", "--version", "1.4.0").exit_code == 0
    text, doc = status(cli)
    assert "of 1.4.0: running, shadow step (of 4 steps) (0 % on 1.4.0; plan [25, 50, 75, 100])" in text, text
    assert "mirroring 20 % to 1.4.0" in text and doc["stage"] == "shadow step (of 4 steps)"
