"""Every built-in rule fires on its fail fixture and stays silent on its pass fixture, exactly."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalog.errors import FixtureInvalid
from catalog.policy.check import load_policies
from catalog.policy.fixtures import case_inputs, fixture_cases, run_fixture_tests
from catalog.policy.inputs import BaseVersion, catalog_inputs
from catalog.validate import validate_bytes
from tests.helpers import MINIMAL
from tests.policy.helpers import FIXTURES, POLICIES, copy_policies

BUILT_IN = [f"MC{n:03d}" for n in range(1, 15)]


@pytest.fixture(scope="module")
def results():
    return {r.rule.id: r for r in run_fixture_tests(POLICIES)}


def test_every_built_in_rule_is_loaded(results):
    assert sorted(results) == BUILT_IN


@pytest.mark.parametrize("rule", BUILT_IN)
def test_rule_matches_its_fixtures_exactly(results, rule):
    result = results[rule]
    names = {c.case for c in result.cases}
    assert any(n.startswith("pass") for n in names) and any(n.startswith("fail") for n in names)
    for case in result.cases:
        assert case.actual == case.expected, case.case
        if case.case.startswith("pass"):
            assert case.actual == set()
        else:
            assert case.actual, f"{rule} {case.case} does not fire"
    assert result.ok


def test_sizes_above_2_pow_31_are_printed_exactly(results):
    messages = {m for c in results["MC002"].cases for _, m in c.actual}
    assert "scorer 1.0.0: declared artifact size 3000000000 bytes is over the limit of 2147483648 bytes" in messages
    # the model's own lower limit wins over a global limit above 2^31 (regopy's min() gets this wrong)
    assert "scorer 1.0.0: declared artifact size 5000 bytes is over the limit of 4096 bytes" in messages


def test_a_deny_rule_without_a_firing_fixture_fails(tmp_path: Path):
    folder = copy_policies(tmp_path / "policies", ("MC005",))
    for path in fixture_cases(folder / "fixtures" / "MC005"):
        if not path.name.startswith("pass"):
            path.unlink()
    (result,) = run_fixture_tests(folder)
    assert not result.ok
    assert result.problems == ["no fixture makes this deny rule fire"]


def test_a_wrong_expectation_fails(tmp_path: Path):
    folder = copy_policies(tmp_path / "policies", ("MC006",))
    expect = folder / "fixtures" / "MC006" / "fail.expect.yaml"
    expect.write_text(expect.read_text().replace("maximum of 25%", "maximum of 30%"))
    (result,) = run_fixture_tests(folder)
    assert not result.ok
    (case,) = [c for c in result.cases if c.case == "fail.yaml"]
    assert case.expected - case.actual and case.actual - case.expected


def test_fixture_expectation_with_two_mistakes_reports_both_with_their_lines(tmp_path: Path):
    folder = copy_policies(tmp_path / "policies", ("MC006",))
    expect = folder / "fixtures" / "MC006" / "fail.expect.yaml"
    expect.write_text("now: 2026-13-01\nfindings:\n  - subject: binding/checkout/scorer\n")
    with pytest.raises(FixtureInvalid) as info:
        run_fixture_tests(folder)
    assert [(p.file, p.line, p.path) for p in info.value.problems] == [
        (str(expect), 1, "now"),
        (str(expect), 3, "findings[0].message"),
    ]


def test_a_rule_without_fixtures_fails(tmp_path: Path):
    folder = copy_policies(tmp_path / "policies", ("MC003",))
    shutil.rmtree(folder / "fixtures" / "MC003")
    (result,) = run_fixture_tests(folder)
    assert not result.ok and result.problems[0].startswith("no fixtures")


def test_user_rules_use_the_same_layout(tmp_path: Path):
    folder = copy_policies(tmp_path / "policies", ("MC003",))
    (folder / "team_label.rego").write_text(
        """package acme.team_label

import rego.v1

rule := {"id": "ACME001", "title": "Models named team-*", "severity": "deny", "kinds": ["model"]}

deny := [msg |
	input.kind == "model"
	not startswith(input.model.name, "team-")
	msg := sprintf("model %s is not named team-*", [input.model.name])
]
"""
    )
    cases = folder / "fixtures" / "ACME001"
    cases.mkdir()
    shutil.copyfile(FIXTURES / "MC003" / "pass.yaml", cases / "fail.yaml")
    (cases / "fail.expect.yaml").write_text(
        "now: 2026-11-27\nfindings:\n  - {subject: model/scorer, message: model scorer is not named team-*}\n"
    )
    results = {r.rule.id: r for r in run_fixture_tests(folder)}
    assert results["ACME001"].ok and results["MC003"].ok


# -- a rollout's steps list (MC006, MC012)

STEPS_LIST = "        rollout: {strategy: canary, steps: [5, 25, 50, 100], guardrails: {max_error_rate: 0.01}}\n"


def _binding_messages(rule: str, weights: tuple[int, int], base_weights: tuple[int, int] | None) -> list[str]:
    """``rule``'s messages on the minimal catalog's binding, rolled out by STEPS_LIST and routed by
    ``weights`` (1.0.0, 1.1.0), against a base revision that routed it by ``base_weights``."""
    routes = "          - {version: 1.0.0, weight: 90}\n          - {version: 1.1.0, weight: 10}\n"
    new = (
        f"          - {{version: 1.0.0, weight: {weights[0]}}}\n          - {{version: 1.1.0, weight: {weights[1]}}}\n"
    )
    text = MINIMAL.replace("        enabled: true\n", "        enabled: true\n" + STEPS_LIST).replace(routes, new)
    catalog = validate_bytes(text.encode(), "m.yaml").raise_for_errors()
    base = None
    if base_weights is not None:
        base = {
            ("fraud-scorer", version): BaseVersion(
                "fraud-scorer",
                version,
                "production",
                "sha256:" + "0" * 64,
                *((("checkout",), (("checkout", w),)) if w else ((), ())),
            )
            for version, w in zip(("1.0.0", "1.1.0"), base_weights, strict=True)
        }  # a weight of 0: the base did not route the version (as base_versions reads it)
    engine, settings = load_policies(POLICIES)
    [policy] = [r for r in engine.rules if r.id == rule]
    inputs = catalog_inputs(catalog, now=datetime(2026, 11, 27, tzinfo=UTC), settings=settings, base=base)
    return [m for item in inputs if item.kind == "binding" for m in engine.messages(policy, item)]


def test_mc012_lets_a_change_move_to_the_next_step_of_a_steps_list():
    assert _binding_messages("MC012", (0, 100), (50, 50)) == []  # the last step, 50 -> 100
    assert _binding_messages("MC012", (75, 25), (95, 5)) == []  # 5 -> 25
    assert _binding_messages("MC012", (50, 50), (70, 30)) == []  # between steps: 30 -> 50


def test_mc012_limits_a_rise_to_the_next_step_of_a_steps_list_not_its_largest_step():
    # 5 -> 30 rises 25, less than the largest step (50), but past the next step (25)
    jump = "checkout: fraud-scorer 1.1.0 goes from 5% to 30% of the traffic in one change"
    assert _binding_messages("MC012", (70, 30), (95, 5)) == [
        f"{jump}, past its canary rollout's next step of 25%: raise it one step at a time"
    ]


def test_mc012_denies_a_change_beyond_the_next_step_of_a_steps_list():
    jump = "checkout: fraud-scorer 1.1.0 goes from 5% to 60% of the traffic in one change"
    assert _binding_messages("MC012", (40, 60), (95, 5)) == [
        f"{jump}, past its canary rollout's next step of 25%: raise it one step at a time"
    ]


def test_mc012_lets_a_rollback_restore_an_older_version_at_once():
    # after a promote of 1.1.0 (1.0.0's route gone), back to 1.0.0 90 %: 1.1.0's share falls and
    # 1.0.0 is older, so its rise from 0 to 90 (past the next step, 5) is a rollback, not paced
    assert _binding_messages("MC012", (90, 10), (0, 100)) == []
    assert _binding_messages("MC012", (100, 0), (0, 100)) == []


def test_mc012_still_paces_a_newer_version_whose_older_one_falls():
    jump = "checkout: fraud-scorer 1.1.0 goes from 0% to 90% of the traffic in one change"
    assert _binding_messages("MC012", (10, 90), (100, 0)) == [
        f"{jump}, past its canary rollout's next step of 5%: raise it one step at a time"
    ]


def test_binding_routes_say_whether_they_are_newer_than_every_falling_version():
    """MC012's fail fixture: checkout 1.0.0 100 -> 50 and 1.1.0 0 -> 50; feed from 1.1.0 100 to
    1.0.0 50 and 1.2.0 50 (1.1.0 leaves the routes: it falls to 0)."""
    _, settings = load_policies(POLICIES)
    (case,) = [c for c in fixture_cases(FIXTURES / "MC012") if c.name == "fail.yaml"]
    newer = {
        (item.subject, r["version"]): r["newer_than_falling"]
        for item in case_inputs(case, settings)
        if item.kind == "binding"
        for r in item.document["routes"]
    }
    assert newer[("binding/checkout/scorer", "1.0.0")] is False  # it falls itself
    assert newer[("binding/checkout/scorer", "1.1.0")] is True
    assert newer[("binding/feed/scorer", "1.0.0")] is False  # older than 1.1.0, which falls
    assert newer[("binding/feed/scorer", "1.2.0")] is True
    assert newer[("binding/ads/scorer", "1.1.0")] is True  # 1.0.0 falls


def test_mc006_judges_a_steps_list_by_its_largest_step_below_100():
    # [5, 25, 50, 100]: rises of 5, 20 and 25 before the rest; the last rise (50 to 100) is the rest,
    # as step_percent does not count it either
    assert _binding_messages("MC006", (90, 10), None) == []


def test_mc006_judges_a_steps_list_as_the_step_percent_it_spells():
    from catalog.domain.effective import EffectiveRollout
    from catalog.policy.inputs import _largest_step

    assert _largest_step(EffectiveRollout("canary", 10, 60, explicit_steps=(10, 100))) == 10
    assert _largest_step(EffectiveRollout("canary", 10, 60)) == 10
    assert _largest_step(EffectiveRollout("linear", 25, 60, explicit_steps=(25, 50, 75, 100))) == 25
    assert _largest_step(EffectiveRollout("canary", 100, 60, explicit_steps=(5, 50, 100))) == 45
