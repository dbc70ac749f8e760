"""Real OPA (v1.20.2, the reference implementation users run under OPA and conftest) reads every
built-in rule as regopy does: the same findings on every fixture, on the demo catalog, on generated
catalogs and on inputs that lack a fact; and every ``test_*`` rule of ``policies/*_test.rego`` holds.

Real OPA comes from ``make opa`` (``.venv/opa``); where it cannot be had these tests skip and say why.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from catalog.errors import PolicyError, PolicyEvalFailed, PolicyInvalid
from catalog.policy.check import load_policies, policy_data
from catalog.policy.contract import policy_files, unit_test_files
from catalog.policy.findings import SubjectInput
from catalog.policy.fixtures import FIXTURES, case_inputs, fixture_cases, run_fixture_tests
from catalog.policy.inputs import base_versions_of, catalog_inputs
from catalog.policy.opa import OpaPolicies, opa_unavailable
from catalog.policy.settings import load_settings
from catalog.policy.synth_inputs import block_inputs
from catalog.validate import load_catalog
from tests.helpers import DEMO, ROOT
from tests.policy.helpers import MODEL, POLICIES, copy_policies, one_rule
from tests.policy.strategies import NOW, catalogs, stack_bodies

BUILT_IN = [f"MC{n:03d}" for n in range(1, 15)]


@pytest.fixture(scope="module")
def opa_engine():
    reason = opa_unavailable()
    if reason is not None:
        pytest.skip(reason)
    return load_policies(POLICIES, OpaPolicies)


@pytest.fixture(scope="module")
def rego_engine():
    return load_policies(POLICIES)


def _differences(regopy, opa, inputs: list[SubjectInput]) -> list[tuple[str, str, list[str], list[str]]]:
    """(rule, subject, regopy's messages, OPA's) wherever the two engines disagree; each rule sees the
    inputs of its kinds."""
    found = []
    for rule in regopy.rules:
        for item in inputs:
            if item.kind in rule.kinds:
                ours, theirs = sorted(regopy.messages(rule, item)), sorted(opa.messages(rule, item))
                if ours != theirs:
                    found.append((rule.id, item.subject, ours, theirs))
    return found


# -- the differential tests ----------------------------------------------------------------------


def test_real_opa_agrees_with_regopy_on_every_fixture(opa_engine):
    ours = {r.rule.id: r for r in run_fixture_tests(POLICIES)}
    theirs = {r.rule.id: r for r in run_fixture_tests(POLICIES, OpaPolicies)}
    assert sorted(ours) == sorted(theirs) == BUILT_IN
    compared = 0
    for rule in BUILT_IN:
        assert [c.case for c in ours[rule].cases] == [c.case for c in theirs[rule].cases]
        for a, b in zip(ours[rule].cases, theirs[rule].cases, strict=True):
            assert b.actual == a.actual, (
                rule,
                a.case,
                "regopy only:",
                a.actual - b.actual,
                "OPA only:",
                b.actual - a.actual,
            )
            assert b.actual == b.expected, (rule, b.case)
            compared += 1
    assert compared >= 2 * len(BUILT_IN)


def test_real_opa_agrees_with_regopy_on_the_demo_catalog(rego_engine, opa_engine):
    catalog = load_catalog(DEMO)
    config = load_settings(POLICIES)
    without_base = catalog_inputs(catalog, now=NOW, settings=config)
    with_base = catalog_inputs(catalog, now=NOW, settings=config, base=base_versions_of(catalog))
    assert len(without_base) > 10
    assert _differences(rego_engine[0], opa_engine[0], without_base + with_base) == []


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs())
def test_real_opa_agrees_with_regopy_on_generated_catalogs(rego_engine, opa_engine, generated):
    catalog, base = generated
    inputs = catalog_inputs(catalog, now=NOW, settings=rego_engine[1], base=base)
    assert _differences(rego_engine[0], opa_engine[0], inputs) == []


@settings(max_examples=20, deadline=None)
@given(stack_bodies())
def test_real_opa_agrees_with_regopy_on_generated_stacks(rego_engine, opa_engine, body):
    document = {"resource": {"kubernetes_deployment_v1": {"app": body}}, "provider": {"kubernetes": [body]}}
    assert _differences(rego_engine[0], opa_engine[0], block_inputs("prod-kubernetes", document)) == []


def _without_each_key(document: object, path: tuple = ()):
    """(path, a copy of ``document`` without the key at path) for every key of every object in it."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield (*path, key), {k: v for k, v in document.items() if k != key}
            for inner, changed in _without_each_key(value, (*path, key)):
                yield inner, {**document, key: changed}
    elif isinstance(document, list):
        for i, value in enumerate(document):
            for inner, changed in _without_each_key(value, (*path, i)):
                yield inner, [*document[:i], changed, *document[i + 1 :]]


@pytest.mark.slow
def test_no_rule_depends_on_how_an_engine_negates_a_missing_fact(rego_engine, opa_engine):
    """Each fixture input with one key removed (anywhere): both engines give the same messages.
    `not f(x.missing)` is true under regopy and undefined under OPA; a rule must never meet it."""
    (regopy, config), opa = rego_engine, opa_engine[0]
    differences, compared = [], 0
    for result in run_fixture_tests(POLICIES):
        rule = result.rule
        for case in fixture_cases(POLICIES / FIXTURES / rule.id):
            for item in case_inputs(case, config):
                if item.kind not in rule.kinds:
                    continue
                for path, document in _without_each_key(item.document):
                    changed = SubjectInput(item.kind, item.subject, document)
                    ours, theirs = _messages_or_error(regopy, rule, changed), _messages_or_error(opa, rule, changed)
                    compared += 1
                    if ours != theirs:
                        differences.append((rule.id, item.subject, ".".join(map(str, path)), ours, theirs))
    assert compared > 500
    assert differences == []


def _messages_or_error(engine, rule, item: SubjectInput) -> list[str]:
    try:
        return sorted(engine.messages(rule, item))
    except PolicyError as e:
        return [f"error: {type(e).__name__}"]


def test_no_rule_negates_an_expression_that_can_be_undefined():
    """Inside `not`, only local variables and literals: no input/data reference, no lookup `x[k]`, no
    field `x.y` (bind it first, or use object.get / `in` / `== false`)."""
    offending = []
    for path in policy_files(POLICIES):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', line).split("#", 1)[0]  # no strings, no comment
            for negated in re.findall(r"\bnot\s+(.*)$", code):
                arguments = re.sub(r"[A-Za-z_][\w.]*\(", "(", negated)  # function names such as regex.match(
                if re.search(r"\b(input|data)\b|\w\[|[A-Za-z_]\w*\.[A-Za-z_]", arguments):
                    offending.append(f"{path.name}:{number}: not {negated.strip()}")
    assert offending == []


# -- the rules' unit tests (policies/*_test.rego) -------------------------------------------------


def test_every_rule_has_unit_tests():
    rules = {p.name.removesuffix(".rego") for p in policy_files(POLICIES)}
    tests = {p.name.removesuffix("_test.rego"): p for p in unit_test_files(POLICIES)}
    assert sorted(tests) == sorted(rules)
    for name, path in tests.items():
        text = path.read_text()
        package = re.search(r"^package (\S+)", (POLICIES / f"{name}.rego").read_text(), re.MULTILINE).group(1)
        assert re.search(rf"^package {re.escape(package)}$", text, re.MULTILINE), f"{path.name}: not in {package}"
        assert len(re.findall(r"^test_\w+", text, re.MULTILINE)) >= 3, path.name


def _unit_tests(folder: Path):
    return OpaPolicies(policy_files(folder), policy_data(load_settings(folder)), unit_test_files(folder)).unit_tests()


def test_rule_unit_tests_pass_under_real_opa(opa_engine):
    results = _unit_tests(POLICIES)
    assert len(results) >= 3 * len(BUILT_IN)
    assert [r for r in results if not r.passed] == []
    # each rule is exercised under its own package
    assert {r.name.split(".")[1] for r in results} == {m.lower() for m in BUILT_IN}


def test_rule_unit_tests_pass_whatever_the_settings_say(opa_engine, tmp_path: Path):
    """The tests set the settings they depend on (`with data.modelcat.settings as ...`)."""
    folder = copy_policies(tmp_path / "policies")
    (folder / "settings.yaml").write_text(
        "modelcat:\n  settings:\n    max_step_percent: 100\n    min_production_replicas: 9\n"
        "    owner_placeholders: []\n    production_environments: [nowhere]\n"
    )
    assert [r for r in _unit_tests(folder) if not r.passed] == []


def test_a_broken_rule_fails_its_unit_tests(opa_engine, tmp_path: Path):
    folder = copy_policies(tmp_path / "policies", ("MC004",))  # the rule and its unit tests
    assert [p.name for p in unit_test_files(folder)] == ["mc004_production_gates_test.rego"]
    rule = folder / "mc004_production_gates.rego"
    rule.write_text(rule.read_text().replace("value < minimum", "value < minimum - 1"))
    failed = [r for r in _unit_tests(folder) if not r.passed]
    assert failed and all(r.name.startswith("modelcat.mc004.test_") and r.detail for r in failed)


def test_regopy_cannot_evaluate_the_unit_tests(tmp_path: Path):
    """regopy 1.5.2 aborts on `with`, which every unit test uses: modelcat never loads *_test.rego
    (policy_files), and the unit tests run under real OPA. When this starts to pass, run them under
    regopy too."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from catalog.policy.check import policy_data
        from catalog.policy.contract import policy_files, unit_test_files
        from catalog.policy.rego import RegoPolicies
        from catalog.policy.settings import load_settings
        folder = Path({str(POLICIES)!r})
        engine = RegoPolicies(policy_files(folder), policy_data(load_settings(folder)), unit_test_files(folder))
        failed = [r for r in engine.unit_tests() if not r.passed]
        print("failed:", failed)
        raise SystemExit(1 if failed else 0)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode != 0, "regopy now evaluates the unit tests: run them under regopy as well"
    assert run.returncode < 0 or "rego-refhead" in run.stderr, (run.returncode, run.stdout, run.stderr[-2000:])


def test_modelcat_never_loads_the_unit_tests(tmp_path: Path):
    policies, _ = load_policies(POLICIES)  # regopy would abort on their `with`
    assert len(policies.rules) == len(BUILT_IN)
    assert all(not r.file.endswith("_test.rego") for r in policies.rules)
    assert all("_test" not in p.name for p in policy_files(POLICIES))


def test_init_ships_the_unit_tests_and_they_pass_there(cli, tmp_path: Path, opa_engine):
    repo = tmp_path / "repo"
    assert cli("init", repo).exit_code == 0
    shipped = sorted(p.name for p in unit_test_files(repo / "policies"))
    assert shipped == sorted(p.name for p in unit_test_files(POLICIES)) and shipped
    assert [r for r in _unit_tests(repo / "policies") if not r.passed] == []


# -- the adapter ---------------------------------------------------------------------------------


def _opa(tmp_path: Path, body: str) -> OpaPolicies:
    return one_rule(tmp_path, body, OpaPolicies)


def test_opa_gives_the_same_messages_as_regopy_for_a_user_rule(opa_engine, tmp_path: Path):
    body = 'deny := [msg | startswith(input.model.name, "m"); msg := sprintf("model %s", [input.model.name])]\n'
    rule = _opa(tmp_path, body)
    assert rule.messages(rule.rules[0], MODEL) == ["model m"]
    regopy = one_rule(tmp_path, body)
    assert regopy.messages(regopy.rules[0], MODEL) == ["model m"]


@pytest.mark.parametrize(
    ("body", "error", "line"),
    [
        ("deny := [msg | msg := input.model.name +]\n", PolicyInvalid, 7),  # parse error
        ("deny := [msg | msg := x]\n", PolicyInvalid, 7),  # unsafe variable: a compile error
        ("deny := [msg | msg := no_such_function(1)]\n", PolicyInvalid, 7),
        ('deny := ["x"] if input.never\n', PolicyInvalid, 0),  # undefined deny
        ("deny := [1, 2]\n", PolicyInvalid, 0),  # not messages
        ('x := 1 if input.kind\nx := 2 if input.kind\ndeny := [sprintf("%v", [x])]\n', PolicyEvalFailed, 0),
    ],
)
def test_opa_errors_are_translated(opa_engine, tmp_path: Path, body: str, error: type, line: int):
    with pytest.raises(error) as info:
        policies = _opa(tmp_path, body)
        policies.messages(policies.rules[0], MODEL)
    assert info.value.exit_code == 2
    assert info.value.path == str(tmp_path / "r.rego")
    assert info.value.line == line


def test_missing_opa_says_why(tmp_path: Path):
    reason = opa_unavailable(tmp_path)
    assert reason is not None and ("make opa" in reason or "no build" in reason)
    with pytest.raises(PolicyError, match="make opa|no build"):
        OpaPolicies([], {}, folder=tmp_path)
