"""Rollout blocks: per binding over defaults.rollout, checked for what each strategy needs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.domain.deployment import environments
from catalog.domain.effective import EffectiveRollout, effective_rollout
from catalog.validate import validate_bytes, validate_file
from tests.helpers import DEMO, MINIMAL, json_schema_validator, line_of, reported_problem

ANCHOR = "        enabled: true\n"
CANARY = """\
        rollout:
          strategy: canary
          step_percent: 10
          interval_seconds: 600
          guardrails: {max_error_rate: 0.01, max_p99_latency_ms: 250}
"""
BASE = MINIMAL.replace(ANCHOR, ANCHOR + CANARY)


def with_rollout(block: str) -> str:
    """MINIMAL with ``block`` (YAML lines under the binding, 10 spaces deep) as the binding's rollout."""
    return MINIMAL.replace(ANCHOR, ANCHOR + "        rollout:\n" + block)


def with_defaults(block: str, text: str = MINIMAL) -> str:
    return text.replace("apiVersion: modelcat/v1\n", "apiVersion: modelcat/v1\ndefaults:\n  rollout:\n" + block, 1)


GUARDS = "          guardrails: {max_error_rate: 0.01}\n"
BINDING = "applications[checkout].bindings[0].rollout"

# (id, catalog text, code, text whose line the problem points at, words in the message, display path)
CASES = [
    (
        "canary-without-step",
        with_rollout("          strategy: canary\n" + GUARDS),
        "rollout.step-required",
        "strategy: canary",
        "strategy canary needs step_percent (the percent of traffic the first step moves)",
        f"{BINDING}.strategy",
    ),
    (
        "linear-without-step",
        with_rollout("          strategy: linear\n" + GUARDS),
        "rollout.step-required",
        "strategy: linear",
        "strategy linear needs step_percent (the percent of traffic each step moves)",
        f"{BINDING}.strategy",
    ),
    (
        "step-for-all-at-once",
        with_rollout("          strategy: all_at_once\n          step_percent: 20\n"),
        "rollout.step-forbidden",
        "step_percent: 20",
        "step_percent means nothing for strategy all_at_once",
        f"{BINDING}.step_percent",
    ),
    (
        "step-without-strategy",
        with_rollout("          step_percent: 20\n"),
        "rollout.step-forbidden",
        "step_percent: 20",
        "step_percent means nothing for strategy all_at_once",
        f"{BINDING}.step_percent",
    ),
    (
        "interval-for-all-at-once",
        with_rollout("          interval_seconds: 60\n"),
        "rollout.interval-forbidden",
        "interval_seconds: 60",
        "interval_seconds means nothing for strategy all_at_once",
        f"{BINDING}.interval_seconds",
    ),
    (
        "linear-step-not-dividing-100",
        with_rollout("          strategy: linear\n          step_percent: 30\n" + GUARDS),
        "rollout.linear-step",
        "step_percent: 30",
        "linear steps of 30 % do not reach 100 % in equal steps",
        f"{BINDING}.step_percent",
    ),
    (
        "step-zero",
        BASE.replace("step_percent: 10", "step_percent: 0"),
        "schema.greater_than_equal",
        "step_percent: 0",
        "step_percent 0 (a number) is out of range: must be >= 1",
        f"{BINDING}.step_percent",
    ),
    (
        "step-over-100",
        BASE.replace("step_percent: 10", "step_percent: 150"),
        "schema.less_than_equal",
        "step_percent: 150",
        "step_percent 150 (a number) is out of range: must be <= 100",
        f"{BINDING}.step_percent",
    ),
    (
        "step-as-a-fraction",
        BASE.replace("step_percent: 10", "step_percent: 0.1"),
        "schema.int_type",
        "step_percent: 0.1",
        "expected a whole number, got 0.1",
        f"{BINDING}.step_percent",
    ),
    (
        "interval-over-an-hour",
        BASE.replace("interval_seconds: 600", "interval_seconds: 3601"),
        "schema.less_than_equal",
        "interval_seconds: 3601",
        "interval_seconds 3601 (a number) is out of range: must be <= 3600",
        f"{BINDING}.interval_seconds",
    ),
    (
        "interval-negative",
        BASE.replace("interval_seconds: 600", "interval_seconds: -1"),
        "schema.greater_than_equal",
        "interval_seconds: -1",
        "interval_seconds -1 (a number) is out of range: must be >= 0",
        f"{BINDING}.interval_seconds",
    ),
    (
        "error-rate-in-percent",
        BASE.replace("max_error_rate: 0.01", "max_error_rate: 1.5"),
        "schema.less_than_equal",
        "max_error_rate: 1.5",
        "max_error_rate 1.5 (a number) is out of range: must be <= 1",
        f"{BINDING}.guardrails.max_error_rate",
    ),
    (
        "latency-zero",
        BASE.replace("max_p99_latency_ms: 250", "max_p99_latency_ms: 0"),
        "schema.greater_than",
        "max_p99_latency_ms: 0",
        "max_p99_latency_ms 0 (a number) is out of range: must be > 0",
        f"{BINDING}.guardrails.max_p99_latency_ms",
    ),
    (
        "unknown-strategy",
        BASE.replace("strategy: canary", "strategy: blue_green"),
        "schema.literal_error",
        "strategy: blue_green",
        "strategy blue_green (a string) is not one of the allowed values",
        f"{BINDING}.strategy",
    ),
    (
        "unknown-field",
        BASE.replace("step_percent: 10", "step_percnt: 10"),
        "schema.extra_forbidden",
        "step_percnt: 10",
        "unknown field 'step_percnt'",
        f"{BINDING}.step_percnt",
    ),
    (
        "defaults-linear-without-step",
        with_defaults("    strategy: linear\n    guardrails: {max_error_rate: 0.01}\n"),
        "rollout.step-required",
        "strategy: linear",
        "strategy linear needs step_percent",
        "defaults.rollout.strategy",
    ),
]


@pytest.mark.parametrize(("text", "code", "anchor", "words", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_rollout_is_reported_with_line_path_and_exit_1(write, cli, text, code, anchor, words, path):
    file = write(text)
    problem = reported_problem(cli, file, code)
    assert words in problem["message"], problem
    assert (problem["file"], problem["line"], problem["path"]) == (str(file), line_of(text, anchor), path), problem
    assert problem["column"] >= 1 and problem["hint"]


SCHEMA_LEVEL = [c for c in CASES if c[2].startswith("schema.")]


@pytest.mark.parametrize("text", [c[1] for c in SCHEMA_LEVEL], ids=[c[0] for c in SCHEMA_LEVEL])
def test_json_schema_rejects_the_same_rollouts(text):
    from catalog.yamlio.loader import parse

    assert list(json_schema_validator().iter_errors(parse(text, "m.yaml").data))


def test_hints(write):
    by_id = {c[0]: c[1] for c in CASES}
    [problem] = validate_file(write(by_id["linear-step-not-dividing-100"])).errors
    assert problem.hint == "use a divisor of 100 of 5 or more: 5, 10, 20, 25 or 50 (nearest: 20 or 25)"
    [problem] = validate_file(write(by_id["error-rate-in-percent"])).errors
    assert problem.hint == "max_error_rate is a fraction: write 0.01 for 1 %"
    [problem] = validate_file(write(by_id["canary-without-step"])).errors
    assert problem.hint == "add step_percent: 10"


def test_a_valid_rollout_passes_both_schemas():
    from catalog.yamlio.loader import parse

    report = validate_bytes(BASE.encode(), "m.yaml")
    assert report.ok and report.problems == [], report.problems
    assert list(json_schema_validator().iter_errors(parse(BASE, "m.yaml").data)) == []


@pytest.mark.parametrize("guardrails", ["", "          guardrails: {}\n"], ids=["none", "empty"])
@pytest.mark.parametrize("strategy", ["canary", "linear"])
def test_a_stepped_rollout_without_guardrails_is_a_warning(write, cli, strategy, guardrails):
    text = with_rollout(f"          strategy: {strategy}\n          step_percent: 20\n" + guardrails)
    result = cli("validate", write(text), "--format", "json")
    assert result.exit_code == 0, result.output
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["severity"], problem["code"]) == ("warning", "rollout.unguarded")
    assert problem["message"] == f"{strategy} rollout without guardrails: nothing would stop a bad step"
    assert problem["line"] == line_of(text, "guardrails: {}" if guardrails else f"strategy: {strategy}")


def test_a_step_of_100_is_a_warning(write):
    report = validate_file(write(BASE.replace("step_percent: 10", "step_percent: 100")))
    assert report.ok
    [problem] = report.problems
    assert (problem.code, problem.severity) == ("rollout.single-step", "warning")
    assert problem.message == "a canary step of 100 % moves all traffic at once"


def test_every_rollout_problem_is_reported_at_once(write):
    text = with_defaults("    strategy: canary\n", BASE.replace("step_percent: 10", "step_percent: 0"))
    text += "      - model: other\n        rollout: {strategy: linear, step_percent: 40}\n"
    text += "        routes: [{version: 1.0.0, weight: 100}]\n"
    report = validate_file(write(text))
    assert sorted((p.code, p.path) for p in report.problems) == [
        ("ref.missing-model", "applications[checkout].bindings[1].model"),
        ("rollout.linear-step", "applications[checkout].bindings[1].rollout.step_percent"),
        ("rollout.step-required", "defaults.rollout.strategy"),
        ("rollout.unguarded", "applications[checkout].bindings[1].rollout.strategy"),
        ("rollout.unguarded", "defaults.rollout.strategy"),
        ("schema.greater_than_equal", "applications[checkout].bindings[0].rollout.step_percent"),
    ]


# -- defaults.rollout and effective_rollout


def _effective(binding_block: str | None, defaults_block: str | None) -> tuple[EffectiveRollout, list[str]]:
    text = with_rollout(binding_block) if binding_block else MINIMAL
    if defaults_block:
        text = with_defaults(defaults_block, text)
    report = validate_bytes(text.encode(), "m.yaml")
    assert report.catalog is not None, report.problems
    catalog = report.catalog
    return effective_rollout(catalog, catalog.applications[0].bindings[0]), [p.code for p in report.problems]


DEFAULT_CANARY = (
    "    strategy: canary\n    step_percent: 5\n    interval_seconds: 60\n    guardrails: {max_error_rate: 0.02}\n"
)


def test_without_any_rollout_a_change_takes_effect_at_once():
    rollout, problems = _effective(None, None)
    assert rollout == EffectiveRollout("all_at_once", 100, 0, None, None) and problems == []
    assert rollout.steps == (100,) and not rollout.guarded


def test_a_binding_without_a_block_takes_the_defaults():
    rollout, problems = _effective(None, DEFAULT_CANARY)
    assert rollout == EffectiveRollout("canary", 5, 60, 0.02, None) and problems == []
    assert rollout.steps == (5, 100) and rollout.guarded


def test_a_binding_overrides_the_defaults_field_by_field():
    rollout, problems = _effective("          step_percent: 20\n", DEFAULT_CANARY)
    assert rollout == EffectiveRollout("canary", 20, 60, 0.02, None) and problems == []


def test_another_strategy_takes_guardrails_but_not_the_steps_of_the_defaults():
    rollout, problems = _effective("          strategy: linear\n          step_percent: 25\n", DEFAULT_CANARY)
    assert rollout == EffectiveRollout("linear", 25, 300, 0.02, None) and problems == []
    assert rollout.steps == (25, 50, 75, 100)
    rollout, problems = _effective("          strategy: all_at_once\n", DEFAULT_CANARY)
    assert rollout == EffectiveRollout("all_at_once", 100, 0, 0.02, None) and problems == []
    # a linear default's step does not leak into a canary
    text = with_defaults(
        "    strategy: linear\n    step_percent: 20\n", with_rollout("          strategy: canary\n" + GUARDS)
    )
    problems = validate_bytes(text.encode(), "m.yaml").problems
    assert [(p.code, p.path) for p in problems] == [
        ("rollout.unguarded", "defaults.rollout.strategy"),
        ("rollout.step-required", f"{BINDING}.strategy"),
    ]


def test_a_rollouts_next_step_is_its_first_planned_step_above_a_share():
    canary = EffectiveRollout("canary", 10)
    assert [canary.next_step(share) for share in (0, 9, 10, 50, 100)] == [10, 10, 100, 100, 100]
    linear = EffectiveRollout("linear", 25)
    assert [linear.next_step(share) for share in (0, 25, 30, 75)] == [25, 50, 50, 100]
    listed = EffectiveRollout("canary", explicit_steps=(5, 25, 50, 100))
    assert [listed.next_step(share) for share in (0, 5, 30, 50)] == [5, 25, 50, 100]
    assert EffectiveRollout().next_step(0) == 100  # all at once


def test_guardrails_replace_the_defaults_as_a_block():
    rollout, _ = _effective("          guardrails: {max_p99_latency_ms: 300}\n", DEFAULT_CANARY)
    assert (rollout.max_error_rate, rollout.max_p99_latency_ms) == (None, 300)


def test_empty_guardrails_drop_the_defaults_and_are_a_warning(write):
    report = validate_file(write(with_defaults(DEFAULT_CANARY, with_rollout("          guardrails: {}\n"))))
    [problem] = report.problems
    assert (problem.code, problem.path) == ("rollout.unguarded", f"{BINDING}.guardrails")
    assert not effective_rollout(report.catalog, report.catalog.applications[0].bindings[0]).guarded


def test_a_problem_of_the_defaults_is_reported_once_not_per_binding(write):
    text = with_defaults("    strategy: canary\n", with_rollout("          interval_seconds: 30\n"))
    report = validate_file(write(text))
    assert [(p.code, p.path) for p in report.problems] == [
        ("rollout.step-required", "defaults.rollout.strategy"),
        ("rollout.unguarded", "defaults.rollout.strategy"),
    ]


def test_binding_plans_carry_their_rollout(write):
    catalog = validate_file(write(BASE)).raise_for_errors()
    [env] = environments(catalog)
    [binding] = env.applications[0].bindings
    assert binding.rollout == EffectiveRollout("canary", 10, 600, 0.01, 250)


def test_demo_rollouts():
    catalog = validate_file(DEMO).raise_for_errors()
    plans = {
        (a.name, b.model): b.rollout for env in environments(catalog) for a in env.applications for b in a.bindings
    }
    assert plans[("checkout", "fraud-scorer")] == EffectiveRollout("canary", 10, 60, 0.01, 250)
    assert plans[("storefront", "recommender")].strategy == "linear"
    assert plans[("storefront", "recommender")].steps == (25, 50, 75, 100)
    assert plans[("storefront", "search-ranker")].steps == (100,)


# -- properties

STRATEGIES = st.sampled_from(["all_at_once", "canary", "linear", None])


@settings(max_examples=150, deadline=None)
@given(STRATEGIES, st.one_of(st.none(), st.integers(-5, 105)), st.one_of(st.none(), st.integers(-10, 4_000)))
def test_a_rollout_is_accepted_exactly_when_its_strategy_can_use_it(strategy, step, interval):
    fields = {"strategy": strategy, "step_percent": step, "interval_seconds": interval}
    block = "".join(f"          {k}: {v}\n" for k, v in fields.items() if v is not None) + GUARDS
    report = validate_bytes(with_rollout(block).encode(), "m.yaml")
    stepped = strategy in ("canary", "linear")
    in_range = (step is None or 1 <= step <= 100) and (interval is None or 0 <= interval <= 3_600)
    if stepped:
        # linear: equal steps, 20 at most, whose bakes take 8 h at most
        bakes = 100 // step - 1 if step else 0
        fits = step is not None and (
            strategy == "canary"
            or (
                step > 0
                and 100 % step == 0
                and bakes < 20
                and bakes * (300 if interval is None else interval) <= 28_800
            )
        )
    else:
        fits = step is None and interval is None
    assert report.ok == (in_range and fits), report.problems
    if report.ok:
        rollout = effective_rollout(report.catalog, report.catalog.applications[0].bindings[0])
        assert rollout.strategy == (strategy or "all_at_once")
        assert rollout.interval_seconds == (0 if not stepped else 300 if interval is None else interval)
        steps = rollout.steps
        assert steps[-1] == 100 and list(steps) == sorted(set(steps))
        if strategy == "linear":
            assert all(b - a == step for a, b in zip((0, *steps), steps, strict=False))
        if strategy == "canary":
            assert steps == ((step, 100) if step < 100 else (100,))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["canary", "linear"]), st.integers(1, 100))
def test_steps_always_reach_100_in_order(strategy, step):
    steps = EffectiveRollout(strategy, step, 300).steps
    assert steps[0] == step and steps[-1] == 100 and list(steps) == sorted(set(steps))
    if strategy == "canary":
        assert len(steps) == (1 if step == 100 else 2)
    else:  # equal steps, only the last may be smaller (a step that does not divide 100 is refused by validate)
        assert all(b - a == step for a, b in zip((0, *steps), steps[:-1], strict=False))
        assert 0 < 100 - (steps[-2] if len(steps) > 1 else 0) <= step
