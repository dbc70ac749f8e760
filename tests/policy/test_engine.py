"""The regopy adapter is honest: a broken rule is an error (exit 2), never "0 findings"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.errors import PolicyEvalFailed, PolicyInvalid
from catalog.policy.findings import SubjectInput
from catalog.policy.rego import RegoPolicies
from tests.policy.helpers import FIXTURES, MODEL, NOW, copy_policies, one_rule


def test_syntax_error_is_policy_invalid_with_its_line(tmp_path: Path, capfd):
    with pytest.raises(PolicyInvalid) as info:
        one_rule(tmp_path, "deny := [msg | msg := input.x +]\n")
    assert info.value.exit_code == 2
    assert info.value.line == 7 and info.value.column == 31
    assert "does not compile" in str(info.value)
    assert capfd.readouterr().out == ""  # regopy's own error print is silenced


def test_a_good_rule_then_a_broken_one_is_still_an_error(tmp_path: Path):
    good = one_rule(tmp_path, 'deny := [msg | msg := "x"]\n')
    assert good.messages(good.rules[0], MODEL) == ["x"]
    with pytest.raises(PolicyInvalid):
        one_rule(tmp_path, 'deny := [msg | msg := "x" +]\n')


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("deny := [msg | msg := input.model.name + 1]\n", PolicyEvalFailed),  # type error
        ("deny := [msg | msg := no_such_function(1)]\n", PolicyEvalFailed),  # ok() is True, the result an error
        ('deny := [msg | msg := sprintf("%s", "not an array")]\n', PolicyEvalFailed),  # built-in error
        ('x := 1 if input.kind\nx := 2 if input.kind\ndeny := [sprintf("%v", [x])]\n', PolicyEvalFailed),
        ('deny := ["x"] if input.never\n', PolicyInvalid),  # undefined deny
        ('deny[msg] { msg := "x" }\n', PolicyInvalid),  # v0 syntax: regopy makes an object of it
        ("deny := [1, 2]\n", PolicyInvalid),  # not messages
    ],
)
def test_evaluation_problems_are_errors(tmp_path: Path, body: str, error: type):
    with pytest.raises(error):
        policies = one_rule(tmp_path, body)
        policies.messages(policies.rules[0], MODEL)


def test_rule_contract_is_checked(tmp_path: Path):
    path = tmp_path / "r.rego"
    path.write_text('package acme.r\nimport rego.v1\nrule := {"id": "x1"}\ndeny := []\n')
    with pytest.raises(PolicyInvalid, match="id"):
        RegoPolicies([path], {})
    path.write_text("package acme.r\nimport rego.v1\ndeny := []\nwarn := []\n")
    with pytest.raises(PolicyInvalid, match="exactly one of deny or warn"):
        RegoPolicies([path], {})


def test_sets_and_msg_objects_are_messages_too(tmp_path: Path):
    policies = one_rule(tmp_path, 'deny contains msg if { msg := "a" }\n')
    assert policies.messages(policies.rules[0], MODEL) == ["a"]
    policies = one_rule(tmp_path, 'deny := [{"msg": "b", "details": {}}]\n')
    assert policies.messages(policies.rules[0], MODEL) == ["b"]


def test_strings_with_quotes_and_backslashes_survive(tmp_path: Path):
    policies = one_rule(tmp_path, 'deny := [msg | msg := sprintf("owner %s", [input.model.owner])]\n')
    item = SubjectInput("model", "model/m", {"kind": "model", "model": {"name": "m", "owner": 'a "b" \\c é'}})
    assert policies.messages(policies.rules[0], item) == ['owner a "b" \\c é']


def test_cli_check_with_a_broken_rule_exits_2_not_0(tmp_path: Path, cli):
    folder = copy_policies(tmp_path / "policies")
    (folder / "mc006_rollout_step.rego").write_text(
        (folder / "mc006_rollout_step.rego").read_text().replace("maximum := data", "maximum := := data")
    )
    result = cli("policy", "check", FIXTURES / "MC006" / "fail.yaml", "--policies", folder, "--now", NOW)
    assert result.exit_code == 2
    assert "mc006_rollout_step.rego:" in result.output and "does not compile" in result.output
    assert "0 denied" not in result.output
    for fmt in ("json", "sarif", "markdown"):
        result = cli("policy", "check", FIXTURES / "MC006" / "fail.yaml", "--policies", folder, "--format", fmt)
        assert result.exit_code == 2
    assert cli("policy", "test", "--policies", folder).exit_code == 2


def test_input_is_small_per_subject_json(cli, tmp_path: Path):
    result = cli(
        "policy", "input", FIXTURES / "MC004" / "fail.yaml", "--now", NOW, "--policies", copy_policies(tmp_path / "p")
    )
    assert result.exit_code == 0
    inputs = json.loads(result.output)
    assert {i["kind"] for i in inputs} == {"model", "version", "application", "binding"}
    assert all(len(json.dumps(i)) < 4000 for i in inputs)
    assert "null" not in result.output  # regopy compares null as greater than any number
    (binding,) = [i for i in inputs if i["subject"] == "binding/checkout/scorer"]
    assert binding["routes"][0]["age_days"] == 330 and binding["application"]["production"] is True
