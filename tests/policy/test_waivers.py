"""Waivers: active ones suppress and are reported as waived, expired ones deny, unused ones warn."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalog.errors import PolicyConfigInvalid
from catalog.policy.check import policy_check
from tests.policy.helpers import FIXTURES, copy_policies

FAIL = FIXTURES / "MC006" / "fail.yaml"  # one deny: binding/checkout/scorer canary step of 50%
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _check(tmp_path: Path, waivers: str):
    folder = tmp_path / "policies"
    if not folder.exists():
        copy_policies(folder)
    (folder / "waivers.yaml").write_text(waivers)
    return policy_check(FAIL, policies_dir=folder, now=NOW)


def _waiver(expires: str, subject: str = "binding/checkout/scorer", rule: str = "MC006") -> str:
    return f"waivers:\n  - rule: {rule}\n    subject: {subject}\n    reason: agreed with SRE for the holiday freeze\n    expires: {expires}\n"


def test_without_waivers_the_finding_denies(tmp_path: Path):
    result = _check(tmp_path, "waivers: []\n")
    assert [(f.rule, f.subject) for f in result.denies] == [("MC006", "binding/checkout/scorer")]


def test_active_waiver_suppresses_and_reports_as_waived(tmp_path: Path):
    result = _check(tmp_path, _waiver("2026-11-27"))  # expires today: still active
    assert result.ok and not result.denies
    assert [(f.rule, f.waived) for f in result.waived] == [("MC006", "agreed with SRE for the holiday freeze")]
    assert [f.rule for f in result.warnings] == ["MC010"] or not result.warnings


def test_expired_waiver_is_a_deny_that_says_so(tmp_path: Path):
    result = _check(tmp_path, _waiver("2026-11-26"))
    rules = sorted(f.rule for f in result.denies)
    assert rules == ["MC006", "MC900"]
    (expired,) = [f for f in result.denies if f.rule == "MC900"]
    assert "expired on 2026-11-26" in expired.message
    assert expired.file.endswith("waivers.yaml") and expired.line == 2
    assert not result.waived


def test_unused_waiver_is_a_warning(tmp_path: Path):
    result = _check(tmp_path, _waiver("2027-01-31") + _waiver("2027-01-31", subject="binding/nightly/scorer")[9:])
    unused = [f for f in result.warnings if f.rule == "MC901"]
    assert [f.subject for f in unused] == ["waiver/MC006/binding/nightly/scorer"]
    assert "matches no finding" in unused[0].message and unused[0].line == 6
    assert not result.denies


def test_waiver_of_a_rule_not_evaluated_is_not_called_unused(tmp_path: Path):
    result = _check(
        tmp_path, _waiver("2027-01-31", subject="version/scorer@1.0.0", rule="MC008") + _waiver("2027-01-31")[9:]
    )
    assert not [f for f in result.findings if f.rule == "MC901"]  # MC008 needs --base
    result = _check(tmp_path, _waiver("2027-01-31", rule="MC999"))
    assert [f.message for f in result.warnings if f.rule == "MC901"] == [
        "waiver of MC999 for binding/checkout/scorer names no rule of these policies: fix or remove it"
    ]


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        (_waiver("2026-13-01"), 5, "not a date"),
        (_waiver("2027-01-01").replace("    reason: agreed with SRE for the holiday freeze\n", ""), 2, "reason"),
        (_waiver("2027-01-01").replace("subject:", "subjekt:"), 2, "subject: Field required"),
        ("waivers:\n  - rule: MC006\n   subject: [\n", 3, ""),
    ],
)
def test_bad_waivers_file_is_a_clear_error(tmp_path: Path, text: str, line: int, what: str):
    with pytest.raises(PolicyConfigInvalid) as info:
        _check(tmp_path, text)
    assert info.value.exit_code == 2
    assert info.value.path.endswith("waivers.yaml") and info.value.line == line
    assert what in str(info.value)


def test_waivers_file_with_two_mistakes_reports_both_with_their_lines(tmp_path: Path):
    no_reason = _waiver("2027-01-01").replace("    reason: agreed with SRE for the holiday freeze\n", "")
    with pytest.raises(PolicyConfigInvalid) as info:
        _check(tmp_path, _waiver("2026-13-01") + no_reason[len("waivers:\n") :])
    problems = info.value.problems
    assert [(p.line, p.path) for p in problems] == [(5, "waivers[0].expires"), (6, "waivers[1].reason")]
    assert all(p.file.endswith("waivers.yaml") and p.severity == "error" for p in problems)
    assert "not a date" in problems[0].message and "and 1 more problem" in str(info.value)


def test_cli_reports_waived_findings(tmp_path: Path, cli):
    folder = copy_policies(tmp_path / "policies")
    (folder / "waivers.yaml").write_text(_waiver("2027-01-31"))
    result = cli("policy", "check", FAIL, "--policies", folder, "--now", "2026-11-27", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["summary"]["waived"] == 1 and report["waived"][0]["rule"] == "MC006"
    result = cli("policy", "check", FAIL, "--policies", folder, "--now", "2027-02-01")
    assert result.exit_code == 1 and "MC900" in result.output
