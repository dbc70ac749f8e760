"""Rollout plans (a steps list, the number of steps, the bakes' total, a shadow step) and a binding's
mirror: each rule reported by ``modelcat validate`` with file, line and field, exit 1 and ok false."""

from __future__ import annotations

import json

import pytest

from catalog.domain.effective import effective_rollout
from catalog.validate import validate_bytes, validate_file
from tests.domain.test_rollout import GUARDS, MINIMAL, with_defaults, with_rollout
from tests.helpers import line_of

BINDING = "applications[checkout].bindings[0]"
ROLLOUT = f"{BINDING}.rollout"
ROUTES = "          - {version: 1.0.0, weight: 90}\n          - {version: 1.1.0, weight: 10}\n"
SHADOW = "          shadow: {percent: 10}\n"


def stepped(steps: str, strategy: str = "canary", extra: str = "") -> str:
    return with_rollout(f"          strategy: {strategy}\n          steps: {steps}\n" + extra + GUARDS)


def with_mirror(mirror: str, routes: str = "          - {version: 1.0.0, weight: 100}\n", text: str = MINIMAL) -> str:
    """``text`` whose binding routes ``routes`` and mirrors as ``mirror`` (a flow mapping)."""
    return text.replace(ROUTES, routes).replace("        routes:\n", f"        mirror: {mirror}\n        routes:\n")


def problem_of(cli, write, text: str, code: str) -> dict:
    """``modelcat validate --format json``: exit 1, ok false, the file untouched, the one problem with ``code``."""
    file = write(text)
    before = file.read_bytes()
    result = cli("validate", file, "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    [problem] = [p for p in report["problems"] if p["code"] == code]
    assert problem["file"] == str(file) and problem["hint"] and problem["column"] >= 1
    assert file.read_bytes() == before
    return problem


def where(problem: dict) -> tuple[int, str]:
    return problem["line"], problem["path"]


# -- the steps list


def test_steps_that_do_not_rise_are_refused_at_the_step(cli, write):
    text = stepped("[5, 25, 25, 100]")
    problem = problem_of(cli, write, text, "rollout.steps-order")
    assert problem["message"].startswith("step 3 (25 %) does not rise above step 2 (25 %)")
    assert where(problem) == (line_of(text, "steps: [5"), f"{ROLLOUT}.steps[2]")


def test_steps_that_do_not_end_at_100_are_refused(cli, write):
    text = stepped("[10, 50, 90]", "linear")
    problem = problem_of(cli, write, text, "rollout.steps-end")
    assert problem["message"] == "the last step is 90 %: the rollout never reaches 100 %"
    assert where(problem) == (line_of(text, "steps: [10"), f"{ROLLOUT}.steps[2]")


def test_an_empty_steps_list_is_refused(cli, write):
    text = stepped("[]")
    problem = problem_of(cli, write, text, "rollout.steps-end")
    assert (problem["message"], problem["path"]) == ("the steps list is empty", f"{ROLLOUT}.steps")


def test_a_step_outside_1_to_100_is_a_schema_error_at_the_step(cli, write):
    text = stepped("[0, 50, 100]")
    problem = problem_of(cli, write, text, "schema.greater_than_equal")
    assert where(problem) == (line_of(text, "steps: [0"), f"{ROLLOUT}.steps[0]")


def test_steps_with_all_at_once_are_refused(cli, write):
    text = with_rollout("          strategy: all_at_once\n          steps: [50, 100]\n")
    problem = problem_of(cli, write, text, "rollout.steps-forbidden")
    assert problem["message"] == "steps means nothing for strategy all_at_once: it moves all traffic in one step"
    assert where(problem) == (line_of(text, "steps: [50"), f"{ROLLOUT}.steps")


def test_steps_and_step_percent_in_one_block_are_refused(cli, write):
    text = stepped("[5, 50, 100]", extra="          step_percent: 10\n")
    problem = problem_of(cli, write, text, "rollout.steps-and-step")
    assert problem["message"] == "step_percent and steps both say how the rollout steps: choose one"
    assert where(problem) == (line_of(text, "step_percent: 10"), f"{ROLLOUT}.step_percent")


def test_more_than_20_steps_are_refused(cli, write):
    text = stepped("[" + ", ".join(map(str, range(4, 100, 4))) + ", 100]", "linear")
    problem = problem_of(cli, write, text, "rollout.too-many-steps")
    assert problem["message"] == "25 steps, more than the 20 a rollout may take"
    assert where(problem) == (line_of(text, "steps: [4"), f"{ROLLOUT}.steps")


@pytest.mark.parametrize(("step", "count"), [(1, 100), (2, 50), (4, 25)])
def test_a_linear_step_that_makes_more_than_20_steps_is_refused(cli, write, step, count):
    text = with_rollout(f"          strategy: linear\n          step_percent: {step}\n" + GUARDS)
    problem = problem_of(cli, write, text, "rollout.too-many-steps")
    assert problem["message"] == f"linear steps of {step} % take {count} steps, more than the 20 a rollout may take"
    assert problem["hint"] == "use a divisor of 100 of 5 or more: 5, 10, 20, 25 or 50"
    assert where(problem) == (line_of(text, f"step_percent: {step}"), f"{ROLLOUT}.step_percent")


def test_a_steps_list_of_only_100_is_a_warning(write):
    report = validate_file(write(stepped("[100]")))
    assert report.ok
    [problem] = report.problems
    assert (problem.code, problem.severity, problem.path) == ("rollout.single-step", "warning", f"{ROLLOUT}.steps")


def test_a_valid_steps_list_is_the_effective_plan(write):
    report = validate_file(write(stepped("[5, 25, 50, 100]", extra="          interval_seconds: 600\n")))
    assert report.ok and report.problems == [], report.problems
    rollout = effective_rollout(report.catalog, report.catalog.applications[0].bindings[0])
    assert (rollout.steps, rollout.interval_seconds) == ((5, 25, 50, 100), 600)


# -- the whole plan: 8 h of bakes at most


def test_a_plan_whose_bakes_take_more_than_8_hours_is_refused_at_the_interval(cli, write):
    text = stepped("[5, 10, 20, 30, 40, 50, 60, 70, 80, 100]", extra="          interval_seconds: 3600\n")
    problem = problem_of(cli, write, text, "rollout.too-long")
    assert problem["message"] == (
        "the rollout bakes 9 times for 3600 s: 32,400 s (9.0 h), more than the 8 h a rollout may take"
    )
    assert problem["hint"] == "use fewer steps, or an interval_seconds of 3200 or less"
    assert where(problem) == (line_of(text, "interval_seconds: 3600"), f"{ROLLOUT}.interval_seconds")


def test_a_shadow_step_counts_as_one_more_bake(cli, write):
    eight_hours = stepped("[10, 20, 30, 40, 50, 60, 70, 80, 100]", extra="          interval_seconds: 3600\n")
    assert validate_bytes(eight_hours.encode(), "m.yaml").ok  # 8 bakes of an hour: exactly 8 h
    text = eight_hours.replace(GUARDS, SHADOW + GUARDS)
    problem = problem_of(cli, write, text, "rollout.too-long")
    assert problem["message"].startswith("the rollout bakes 9 times (a shadow step included) for 3600 s")


def test_a_plan_too_long_because_of_the_defaults_is_reported_once_at_the_defaults(write):
    defaults = "    strategy: linear\n    step_percent: 10\n    interval_seconds: 3600\n    guardrails: {max_error_rate: 0.01}\n"
    text = with_defaults(defaults, with_rollout("          guardrails: {max_error_rate: 0.02}\n"))
    problems = validate_file(write(text)).problems
    assert [(p.code, p.path) for p in problems] == [("rollout.too-long", "defaults.rollout.interval_seconds")]
    assert problems[0].line == line_of(text, "interval_seconds: 3600")


def test_a_binding_that_lengthens_the_defaults_plan_is_refused_at_its_own_field(write):
    defaults = "    strategy: linear\n    step_percent: 10\n    guardrails: {max_error_rate: 0.01}\n"
    text = with_defaults(defaults, with_rollout("          interval_seconds: 3600\n"))
    problems = validate_file(write(text)).problems
    assert [(p.code, p.path) for p in problems] == [("rollout.too-long", f"{ROLLOUT}.interval_seconds")]


# -- the shadow step


def test_a_shadow_step_with_all_at_once_is_refused(cli, write):
    text = with_rollout("          strategy: all_at_once\n" + SHADOW)
    problem = problem_of(cli, write, text, "rollout.shadow-forbidden")
    assert where(problem) == (line_of(text, "shadow: {percent"), f"{ROLLOUT}.shadow")


# -- steps from defaults.rollout


def test_a_binding_step_percent_replaces_the_steps_of_the_defaults(write):
    defaults = "    strategy: linear\n    steps: [10, 50, 100]\n    guardrails: {max_error_rate: 0.01}\n"
    report = validate_file(write(with_defaults(defaults, with_rollout("          step_percent: 25\n"))))
    assert report.ok and report.problems == [], report.problems
    rollout = effective_rollout(report.catalog, report.catalog.applications[0].bindings[0])
    assert rollout.steps == (25, 50, 75, 100)


def test_a_bad_steps_list_of_the_defaults_is_reported_once(write):
    defaults = "    strategy: canary\n    steps: [50, 10, 100]\n    guardrails: {max_error_rate: 0.01}\n"
    text = with_defaults(defaults, with_rollout("          interval_seconds: 60\n"))
    problems = validate_file(write(text)).problems
    assert [(p.code, p.path) for p in problems] == [("rollout.steps-order", "defaults.rollout.steps[1]")]


# -- a binding's mirror


def test_a_mirror_of_a_version_the_model_does_not_have_is_refused(cli, write):
    text = with_mirror("{version: 1.9.0, percent: 10}")
    problem = problem_of(cli, write, text, "mirror.unknown-version")
    assert problem["message"] == "model 'fraud-scorer' has no version 1.9.0 to mirror requests to"
    assert where(problem) == (line_of(text, "mirror: {"), f"{BINDING}.mirror.version")


def test_a_mirrored_version_must_be_a_route_of_the_binding(cli, write):
    text = with_mirror("{version: 1.1.0, percent: 10}")
    problem = problem_of(cli, write, text, "mirror.not-routed")
    assert problem["hint"] == "add the route {version: 1.1.0, weight: 0}: the router needs its replicas"
    assert where(problem) == (line_of(text, "mirror: {"), f"{BINDING}.mirror.version")


def test_a_mirrored_version_answers_no_traffic(cli, write):
    text = with_mirror("{version: 1.1.0, percent: 10}", ROUTES)
    problem = problem_of(cli, write, text, "mirror.answers-traffic")
    assert problem["message"] == "mirrored version 1.1.0 answers 10 % of the traffic; a mirrored version answers none"
    assert where(problem) == (line_of(text, "mirror: {"), f"{BINDING}.mirror.version")


def test_a_mirror_needs_another_version_answering(cli, write):
    routes = "          - {version: 1.0.0, weight: 0}\n          - {version: 1.1.0, weight: 0}\n"
    text = with_mirror("{version: 1.1.0, percent: 10}", routes)
    problem = problem_of(cli, write, text, "mirror.no-live-version")
    assert where(problem) == (line_of(text, "mirror: {"), f"{BINDING}.mirror")


def test_a_mirror_on_a_disabled_binding_is_refused(cli, write):
    routes = "          - {version: 1.0.0, weight: 100}\n          - {version: 1.1.0, weight: 0}\n"
    text = with_mirror("{version: 1.1.0, percent: 10}", routes).replace("enabled: true", "enabled: false")
    problem = problem_of(cli, write, text, "mirror.disabled-binding")
    assert where(problem) == (line_of(text, "mirror: {"), f"{BINDING}.mirror")


def test_a_shadow_step_in_force_is_valid(write):
    routes = "          - {version: 1.0.0, weight: 100}\n          - {version: 1.1.0+build.7, weight: 0}\n"
    report = validate_file(write(with_mirror("{version: 1.1.0, percent: 10}", routes)))
    assert report.ok and report.problems == [], report.problems
