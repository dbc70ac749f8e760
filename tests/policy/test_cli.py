"""modelcat policy check/test/input through the CLI: exit codes, formats, positions, the demo."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.helpers import DEMO
from tests.policy.helpers import FIXTURES, NOW, POLICIES, copy_policies
from tests.sarif_validators import sarif_errors


def test_demo_catalog_has_no_deny(cli):
    result = cli("policy", "check", DEMO, "--now", NOW, "--policies", POLICIES, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["summary"]["deny"] == 0
    # the one warning: storefront's search-ranker binding rolls out all at once in production
    assert [(f["rule"], f["subject"]) for f in report["findings"]] == [("MC010", "binding/storefront/search-ranker")]


def test_deny_findings_exit_1_with_the_subject_line(cli):
    result = cli("policy", "check", FIXTURES / "MC004" / "fail.yaml", "--now", NOW, "--policies", POLICIES)
    assert result.exit_code == 1
    lines = (FIXTURES / "MC004" / "fail.yaml").read_text().splitlines()
    (checkout_line,) = [n for n, text in enumerate(lines, 1) if text == "  - name: checkout"]
    assert f"fail.yaml:{checkout_line + 4}:9: deny: MC004 checkout: scorer 1.0.0 is 330 days old" in result.output
    assert lines[checkout_line + 3].strip() == "- model: scorer"


def test_sarif_points_at_the_models_yaml_lines(cli):
    path = FIXTURES / "MC005" / "fail.yaml"
    result = cli("policy", "check", path, "--now", NOW, "--policies", POLICIES, "--format", "sarif")
    assert result.exit_code == 1
    sarif = json.loads(result.output)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    (finding,) = [r for r in run["results"] if r["ruleId"] == "MC005"]
    assert rules[finding["ruleIndex"]]["id"] == "MC005" and finding["level"] == "error"
    location = finding["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("fixtures/MC005/fail.yaml")
    line = path.read_text().splitlines()[location["region"]["startLine"] - 1]
    assert line.strip() == "- model: scorer"
    assert finding["locations"][0]["logicalLocations"][0]["name"] == "binding/checkout/scorer"


def test_markdown_is_a_pr_comment_and_output_goes_to_a_file(cli, tmp_path: Path):
    out = tmp_path / "comment.md"
    result = cli(
        "policy", "check", FIXTURES / "MC006" / "fail.yaml", "--now", NOW, "--policies", POLICIES,
        "--format", "markdown", "--output", out,
    )  # fmt: skip
    assert result.exit_code == 1 and "1 denied" in result.output
    text = out.read_text()
    assert text.startswith("### ❌ policy check failed")
    assert "| ❌ deny | MC006 Rollout step within the maximum | `binding/checkout/scorer` |" in text


def test_usage_errors_exit_2(cli, tmp_path: Path):
    assert cli("policy", "check", tmp_path / "missing.yaml", "--policies", POLICIES).exit_code == 2
    assert cli("policy", "check", DEMO, "--policies", tmp_path).exit_code == 2  # no rules in it
    assert cli("policy", "check", DEMO, "--policies", POLICIES, "--now", "someday").exit_code == 2
    assert cli("policy", "check", DEMO, "--policies", POLICIES, "--synth-dir", tmp_path).exit_code == 2


def test_schema_invalid_catalog_exits_1(cli, write):
    path = write("apiVersion: modelcat/v1\nmodels: []\n")
    result = cli("policy", "check", path, "--policies", POLICIES)
    assert result.exit_code == 1


def test_policy_test_passes_on_the_built_in_rules(cli):
    result = cli("policy", "test", "--policies", POLICIES)
    assert result.exit_code == 0, result.output
    assert "policy test: 14 of 14 rules pass their fixtures" in result.output


def test_synthesized_output_is_checked(cli, tmp_path: Path):
    stack = tmp_path / "out" / "stacks" / "production-kubernetes"
    stack.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "MC011" / "fail.tf.json", stack / "cdk.tf.json")
    result = cli("policy", "check", DEMO, "--now", NOW, "--policies", POLICIES, "--synth-dir", tmp_path / "out")
    assert result.exit_code == 1
    assert "cdk.tf.json:" in result.output and "holds a private key" in result.output
    assert "hunter2" not in result.output  # a secret's value is never printed


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def test_base_revision_from_git(cli, tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    shutil.copyfile(FIXTURES / "MC008" / "fail.base.yaml", repo / "models.yaml")
    _git(repo, "add", "models.yaml")
    _git(repo, "commit", "-q", "-m", "base")
    shutil.copyfile(FIXTURES / "MC008" / "fail.yaml", repo / "models.yaml")
    args = ("policy", "check", repo / "models.yaml", "--now", NOW, "--policies", POLICIES, "--format", "json")
    unchecked = json.loads(cli(*args).output)
    assert not [f for f in unchecked["findings"] if f["rule"] == "MC008"]
    assert [r["skipped"] for r in unchecked["rules"] if r["id"] == "MC008"] == ["needs --base"]
    result = cli(*args, "--base", "HEAD")
    assert result.exit_code == 1
    assert sorted(f["subject"] for f in json.loads(result.output)["findings"] if f["rule"] == "MC008") == [
        "version/scorer@1.0.0",
        "version/scorer@1.1.0",
    ]
    assert cli(*args, "--base", "no-such-ref").exit_code == 2


def test_sarif_validates_against_the_sarif_2_1_0_schema(cli, tmp_path: Path):
    for path in (FIXTURES / "MC005" / "fail.yaml", FIXTURES / "MC004" / "fail.yaml", DEMO):
        result = cli("policy", "check", path, "--now", NOW, "--policies", POLICIES, "--format", "sarif")
        document = json.loads(result.output)
        assert document["runs"][0]["results"] or path == DEMO
        assert sarif_errors(document) == [], path
    # and the schema does catch a broken log: the check above is not vacuous
    broken = json.loads(result.output)
    broken["runs"][0]["results"] = [{"ruleId": "MC005", "level": "fatal", "message": {}}]
    assert len(sarif_errors(broken)) >= 2


def test_settings_file_with_two_mistakes_reports_both_with_their_lines(cli, tmp_path: Path):
    """Every problem of policies/settings.yaml, each at its line: listed in text as validate lists
    a catalog's, and all in the JSON's problems."""
    folder = copy_policies(tmp_path / "policies")
    settings = folder / "settings.yaml"
    settings.write_text("modelcat:\n  settings:\n    max_step_percent: 0\n    min_production_replicas: many\n")
    result = cli("policy", "check", DEMO, "--now", NOW, "--policies", folder, "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert not report["ok"] and report["error"]["code"] == "policy_config_invalid"
    assert [(p["file"], p["line"], p["column"], p["path"]) for p in report["problems"]] == [
        (str(settings), 3, 23, "modelcat.settings.max_step_percent"),
        (str(settings), 4, 30, "modelcat.settings.min_production_replicas"),
    ]
    result = cli("policy", "check", DEMO, "--now", NOW, "--policies", folder)
    assert result.exit_code == 2
    assert f"{settings}:3:23: error: modelcat.settings.max_step_percent: " in result.output
    assert f"{settings}:4:30: error: modelcat.settings.min_production_replicas: " in result.output
