"""Messages that count things say "1 warning", "1 model", "1 problem": one helper, catalog.wording.plural."""

from __future__ import annotations

from datetime import date

from catalog.domain.problems import Problem
from catalog.errors import CatalogInvalid
from catalog.policy.findings import Finding, PolicyResult, RuleInfo
from catalog.policy.render import summary
from catalog.scaffold import example_model, skeleton
from catalog.wording import plural

GUARDRAILS = "          guardrails: {max_error_rate: 0.01, max_p99_latency_ms: 250}\n"


def test_plurals_say_1_warning_and_1_model(cli, write) -> None:
    text = skeleton(example_model(), date(2026, 11, 27))  # one model, one version, one application
    assert GUARDRAILS in text
    path = write(text.replace(GUARDRAILS, ""))  # a canary without guardrails: one warning
    result = cli("validate", path)
    assert result.exit_code == 0, result.output
    assert f"{path}: valid (1 model, 1 version, 1 application, 1 warning)" in result.output

    problem = Problem("x.y", "broken", loc=("models",), file="m.yaml")
    assert str(CatalogInvalid("m.yaml", [problem])) == "m.yaml: 1 problem found"
    assert str(CatalogInvalid("m.yaml", [problem, problem])) == "m.yaml: 2 problems found"

    rule = RuleInfo("MC001", "A rule", "warn", ("model",))
    warning = Finding("MC001", "A rule", "warn", "careful", "model", "model/m")
    assert summary(PolicyResult([rule], [warning], inputs=1)) == "0 denied, 1 warning (1 rule, 1 input)"
    assert summary(PolicyResult([rule, rule], [], inputs=2)) == "0 denied, 0 warnings (2 rules, 2 inputs)"


def test_plural_names_the_count_and_the_noun() -> None:
    assert [plural(n, "model") for n in (0, 1, 2)] == ["0 models", "1 model", "2 models"]
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"
