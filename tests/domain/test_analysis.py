"""Outcomes and analysis blocks: declared on applications and bindings, checked with their lines, and
turned into one effective plan per binding (defaults filled in, rollout guardrails merged)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from catalog.domain.analysis_plan import AnalysisPlan, OutcomeGuardrail, PrimaryOutcome
from catalog.domain.effective import effective_analysis
from catalog.validate import validate_bytes, validate_file
from catalog.yamlio.loader import parse
from tests.helpers import DEMO, MINIMAL, json_schema_validator, line_of, reported_problem

APP_ANCHOR = "    environment: production\n"
BINDING_ANCHOR = "        enabled: true\n"
OUTCOMES = """\
    outcomes:
      - {name: conversion, kind: proportion}
      - {name: basket_value, kind: mean}
      - {name: is_fraud, kind: label}
"""
ANALYSIS = """\
        analysis:
          baseline: 1.0.0
          primary: {outcome: conversion, direction: increase, mde: 0.02}
          guardrails:
            max_error_rate: 0.02
            outcomes: [{outcome: basket_value, max_drop: 2.0}]
          min_samples_per_arm: 800
          alpha: 0.1
          window_hours: 48
"""


def declared(outcomes: str = OUTCOMES, analysis: str = ANALYSIS, text: str = MINIMAL) -> str:
    """MINIMAL with ``outcomes`` under its application and ``analysis`` under its binding."""
    return text.replace(APP_ANCHOR, APP_ANCHOR + outcomes, 1).replace(BINDING_ANCHOR, BINDING_ANCHOR + analysis, 1)


BASE = declared()
APP = "applications[checkout]"
AT = f"{APP}.bindings[0].analysis"

# (id, catalog text, code, text whose line the problem points at, words in the message, display path)
CASES = [
    (
        "outcome-declared-twice",
        declared(OUTCOMES + "      - {name: conversion, kind: mean}\n"),
        "outcome.duplicate",
        "{name: conversion, kind: mean}",
        "outcome 'conversion' is declared twice in application 'checkout' (outcomes 0 and 3)",
        f"{APP}.outcomes[conversion].name",
    ),
    (
        "primary-outcome-undeclared",
        BASE.replace("primary: {outcome: conversion", "primary: {outcome: conversion_rate"),
        "ref.missing-outcome",
        "primary: {outcome: conversion_rate",
        "primary outcome 'conversion_rate' is not an outcome of application 'checkout'",
        f"{AT}.primary.outcome",
    ),
    (
        "guardrail-outcome-undeclared",
        BASE.replace("{outcome: basket_value, max_drop", "{outcome: basket, max_drop"),
        "ref.missing-outcome",
        "{outcome: basket, max_drop",
        "guardrail outcome 'basket' is not an outcome of application 'checkout'",
        f"{AT}.guardrails.outcomes[0].outcome",
    ),
    (
        "label-as-primary",
        BASE.replace("primary: {outcome: conversion", "primary: {outcome: is_fraud"),
        "analysis.label-outcome",
        "primary: {outcome: is_fraud",
        "primary outcome 'is_fraud' is a label",
        f"{AT}.primary.outcome",
    ),
    (
        "label-as-guardrail",
        BASE.replace("{outcome: basket_value, max_drop", "{outcome: is_fraud, max_drop"),
        "analysis.label-outcome",
        "{outcome: is_fraud, max_drop",
        "guardrail outcome 'is_fraud' is a label",
        f"{AT}.guardrails.outcomes[0].outcome",
    ),
    (
        "proportion-mde-in-percent",
        BASE.replace("mde: 0.02}", "mde: 2}"),
        "analysis.mde-range",
        "mde: 2}",
        "mde 2 is not a difference of proportions: 'conversion' is a proportion, so its mde lies in (0, 1)",
        f"{AT}.primary.mde",
    ),
    (
        "proportion-drop-of-one",
        BASE.replace("{outcome: basket_value, max_drop: 2.0}", "{outcome: conversion, max_drop: 1}"),
        "analysis.drop-range",
        "{outcome: conversion, max_drop: 1}",
        "max_drop 1 allows any drop of 'conversion'",
        f"{AT}.guardrails.outcomes[0].max_drop",
    ),
    (
        "guardrail-outcome-twice",
        BASE.replace(
            "outcomes: [{outcome: basket_value, max_drop: 2.0}]",
            "outcomes: [{outcome: basket_value, max_drop: 2.0}, {outcome: basket_value, max_drop: 1.0}]",
        ),
        "analysis.guardrail-twice",
        "outcomes: [{outcome: basket_value",
        "outcome 'basket_value' is guarded twice (guardrails 0 and 1)",
        f"{AT}.guardrails.outcomes[1].outcome",
    ),
    (
        "baseline-not-routed",
        BASE.replace("baseline: 1.0.0", "baseline: 1.2.0"),
        "ref.missing-baseline",
        "baseline: 1.2.0",
        "baseline 1.2.0 is not one of the binding's routes",
        f"{AT}.baseline",
    ),
    (
        "alpha-over-a-half",
        BASE.replace("alpha: 0.1", "alpha: 0.6"),
        "schema.less_than_equal",
        "alpha: 0.6",
        "alpha 0.6 (a number) is out of range: must be <= 0.5",
        f"{AT}.alpha",
    ),
    (
        "alpha-zero",
        BASE.replace("alpha: 0.1", "alpha: 0"),
        "schema.greater_than",
        "alpha: 0",
        "alpha 0 (a number) is out of range: must be > 0",
        f"{AT}.alpha",
    ),
    (
        "mde-zero",
        BASE.replace("mde: 0.02}", "mde: 0}"),
        "schema.greater_than",
        "mde: 0}",
        "mde 0 (a number) is out of range: must be > 0",
        f"{AT}.primary.mde",
    ),
    (
        "min-samples-zero",
        BASE.replace("min_samples_per_arm: 800", "min_samples_per_arm: 0"),
        "schema.greater_than_equal",
        "min_samples_per_arm: 0",
        "min_samples_per_arm 0 (a number) is out of range: must be >= 1",
        f"{AT}.min_samples_per_arm",
    ),
    (
        "unknown-direction",
        BASE.replace("direction: increase", "direction: up"),
        "schema.literal_error",
        "direction: up",
        "direction up (a string) is not one of the allowed values",
        f"{AT}.primary.direction",
    ),
    (
        "unknown-kind",
        BASE.replace("kind: mean}", "kind: average}"),
        "schema.literal_error",
        "kind: average}",
        "kind average (a string) is not one of the allowed values",
        f"{APP}.outcomes[basket_value].kind",
    ),
    (
        "unknown-analysis-field",
        BASE.replace("window_hours: 48", "window_hour: 48"),
        "schema.extra_forbidden",
        "window_hour: 48",
        "unknown field 'window_hour'",
        f"{AT}.window_hour",
    ),
]


def test_the_declaration_as_designed_is_valid(write):
    report = validate_file(write(BASE))
    assert report.problems == [] and report.catalog is not None, report.problems


@pytest.mark.parametrize(("text", "code", "anchor", "words", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_analysis_is_reported_with_line_path_and_exit_1(write, cli, text, code, anchor, words, path):
    file = write(text)
    problem = reported_problem(cli, file, code)
    assert words in problem["message"], problem
    assert (problem["file"], problem["line"], problem["path"]) == (str(file), line_of(text, anchor), path), problem
    assert problem["column"] >= 1 and problem["hint"]


SCHEMA_LEVEL = [c for c in CASES if c[2].startswith("schema.")]


@pytest.mark.parametrize("text", [c[1] for c in SCHEMA_LEVEL], ids=[c[0] for c in SCHEMA_LEVEL])
def test_json_schema_rejects_the_same_analysis_blocks(text):
    assert list(json_schema_validator().iter_errors(parse(text, "m.yaml").data))


def test_json_schema_accepts_the_declaration():
    assert not list(json_schema_validator().iter_errors(parse(BASE, "m.yaml").data))


def test_an_undeclared_outcome_suggests_the_declared_one(write):
    text = BASE.replace("primary: {outcome: conversion", "primary: {outcome: conversions")
    [problem] = validate_file(write(text)).errors
    assert problem.hint.startswith("did you mean 'conversion'? ")
    assert "declared: conversion, basket_value, is_fraud" in problem.hint


def test_every_analysis_problem_is_reported_at_once(write):
    text = (
        BASE.replace("primary: {outcome: conversion", "primary: {outcome: is_fraud")
        .replace("{outcome: basket_value, max_drop", "{outcome: basket, max_drop")
        .replace("baseline: 1.0.0", "baseline: 9.9.9")
        .replace("mde: 0.02}", "mde: 5}")
    )
    report = validate_file(write(text))
    codes = sorted(p.code for p in report.errors)
    assert codes == [
        "analysis.label-outcome",
        "ref.missing-baseline",
        "ref.missing-outcome",
    ], report.errors


def test_analysis_on_a_single_route_without_a_stepped_rollout_warns(write):
    single = MINIMAL.replace("          - {version: 1.1.0, weight: 10}\n", "").replace("weight: 90}", "weight: 100}")
    report = validate_file(write(declared(text=single)))
    assert report.errors == []
    [warning] = report.warnings
    assert warning.code == "analysis.nothing-to-compare"
    assert warning.path == AT


def test_a_baseline_without_traffic_warns(write):
    text = BASE.replace("{version: 1.0.0, weight: 90}", "{version: 1.0.0, weight: 0}").replace(
        "{version: 1.1.0, weight: 10}", "{version: 1.1.0, weight: 100}"
    )
    report = validate_file(write(text))
    assert report.errors == []
    [warning] = report.warnings
    assert (warning.code, warning.path, warning.line) == (
        "analysis.baseline-without-traffic",
        f"{AT}.baseline",
        line_of(text, "baseline: 1.0.0"),
    )


def plan_of(text: str, application: str = "checkout", model: str = "fraud-scorer") -> AnalysisPlan:
    report = validate_bytes(text.encode(), "models.yaml")
    assert report.errors == [] and report.catalog is not None, report.errors
    catalog = report.catalog
    app = next(a for a in catalog.applications if a.name == application)
    binding = next(b for b in app.bindings if b.model == model)
    return effective_analysis(catalog, app, binding)


# the plan of MINIMAL's binding, which declares nothing
NOTHING_DECLARED = AnalysisPlan(
    application="checkout",
    environment="production",
    model="fraud-scorer",
    baseline="1.0.0",
    candidates=("1.1.0",),
    sticky=False,
)


def test_effective_analysis_fills_every_declared_field():
    assert plan_of(BASE) == replace(
        NOTHING_DECLARED,
        primary=PrimaryOutcome("conversion", "proportion", "increase", 0.02, 0.0),
        max_error_rate=0.02,
        max_p99_latency_ms=None,
        outcome_guardrails=(OutcomeGuardrail("basket_value", "mean", 2.0),),
        min_samples_per_arm=800,
        alpha=0.1,
        window_hours=48,
    )


def test_a_binding_without_analysis_gets_a_plan_with_nothing_declared():
    plan = plan_of(MINIMAL)
    assert plan == NOTHING_DECLARED
    assert plan.primary is None and plan.outcome_guardrails == ()
    assert (plan.max_error_rate, plan.max_p99_latency_ms) == (None, None)
    assert (plan.min_samples_per_arm, plan.alpha, plan.window_hours) == (500, 0.05, 72)


def test_the_baseline_defaults_to_the_first_route_and_candidates_need_traffic():
    plan = plan_of(declared(analysis="        analysis: {alpha: 0.05}\n"))
    assert (plan.baseline, plan.candidates) == ("1.0.0", ("1.1.0",))
    plan = plan_of(declared(analysis="        analysis: {baseline: 1.1.0}\n"))
    assert (plan.baseline, plan.candidates) == ("1.1.0", ("1.0.0",))
    unrouted = MINIMAL.replace("weight: 90}", "weight: 100}").replace("weight: 10}", "weight: 0}")
    assert plan_of(unrouted).candidates == ()


ROLLOUT = """\
        rollout:
          strategy: canary
          step_percent: 10
          guardrails: {max_error_rate: 0.01, max_p99_latency_ms: 250}
"""


def test_rollout_guardrails_are_merged_under_the_analysis_guardrails_field_by_field():
    text = declared(analysis=ROLLOUT + "        analysis:\n          guardrails: {max_error_rate: 0.05}\n")
    plan = plan_of(text)
    assert (plan.max_error_rate, plan.max_p99_latency_ms) == (0.05, 250)
    plan = plan_of(declared(analysis=ROLLOUT))
    assert (plan.max_error_rate, plan.max_p99_latency_ms) == (0.01, 250)


def test_default_rollout_guardrails_reach_the_plan():
    text = MINIMAL.replace(
        "apiVersion: modelcat/v1\n",
        "apiVersion: modelcat/v1\ndefaults:\n  rollout:\n    guardrails: {max_p99_latency_ms: 300}\n",
    )
    plan = plan_of(text)
    assert (plan.max_error_rate, plan.max_p99_latency_ms) == (None, 300)


def test_the_demo_storefront_is_an_ab_test_on_conversion():
    text = DEMO.read_text(encoding="utf-8")
    plan = plan_of(text, "storefront", "recommender")
    assert plan.primary == PrimaryOutcome("conversion", "proportion", "increase", 0.02)
    assert (plan.baseline, plan.candidates, plan.sticky) == ("2.1.0", ("2.2.0",), True)
    assert (plan.max_error_rate, plan.max_p99_latency_ms) == (0.02, 400)  # from its rollout's guardrails
    checkout = plan_of(text, "checkout", "fraud-scorer")
    assert checkout.primary is None and (checkout.max_error_rate, checkout.max_p99_latency_ms) == (0.01, 250)
