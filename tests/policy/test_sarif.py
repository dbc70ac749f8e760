"""SARIF that code scanning accepts: locations relative to the repository root (whatever the
working directory), rules with their declared names, descriptions, help and policies page anchors, the
tool's version, and Microsoft's SARIF validator (SARIF and GitHub rules) satisfied."""

from __future__ import annotations

import json
import os
import re
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest

from catalog.policy.contract import policy_files
from tests.git_catalogs import GitRepo
from tests.helpers import DEMO, ROOT
from tests.policy.helpers import FIXTURES, NOW, copy_policies
from tests.sarif_validators import multitool_problems, sarif_errors

EXPIRED_WAIVER = (
    "waivers:\n"
    "  - rule: MC005\n"
    "    subject: binding/checkout/scorer\n"
    "    reason: 0.9.0 drains next week\n"
    "    expires: 2026-01-31\n"
)
NAMES = {
    "MC001": "ArtifactPinnedByDigest",
    "MC002": "ArtifactWithinSizeLimit",
    "MC003": "OwnerPresent",
    "MC004": "ProductionVersionsMeetGates",
    "MC005": "NoTrafficToDeprecatedOrRetiredVersions",
    "MC006": "RolloutStepWithinMaximum",
    "MC007": "ProductionOnlyAfterCandidate",
    "MC008": "ReleasedVersionsKeepTheirBytes",
    "MC009": "ProductionServingIsRedundantAndGuarded",
    "MC010": "ProductionRolloutInSteps",
    "MC011": "NoSecretLiteralsInSynthesizedOutput",
    "MC012": "TrafficMovesOneRolloutStepPerChange",
    "MC013": "ServedVersionsWithinAgeGate",
    "MC014": "ServedVersionsSignedByTrustedKey",
    "MC900": "WaiverExpired",
    "VALIDATE": "CatalogValidates",
}


def _catalog_folder(folder: Path) -> Path:
    """MC005's fail fixture as models.yaml in ``folder`` (a retired version routed: a VALIDATE error
    too), the built-in policies beside it with an expired waiver (MC900), and a synthesized stack
    holding a private key (MC011) in cdktf.out/."""
    folder.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "MC005" / "fail.yaml", folder / "models.yaml")
    (copy_policies(folder / "policies") / "waivers.yaml").write_text(EXPIRED_WAIVER)
    stack = folder / "cdktf.out" / "stacks" / "production-kubernetes"
    stack.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "MC011" / "fail.tf.json", stack / "cdk.tf.json")
    return folder


def _sarif(cli, catalog: Path | str, synth_dir: Path | str) -> dict:
    result = cli("policy", "check", catalog, "--now", NOW, "--format", "sarif", "--synth-dir", synth_dir)
    assert result.exit_code == 1, result.output
    return json.loads(result.output)


def _locations(sarif: dict) -> dict[str, dict]:
    """Each result's rule -> its artifact location."""
    return {r["ruleId"]: r["locations"][0]["physicalLocation"]["artifactLocation"] for r in sarif["runs"][0]["results"]}


@pytest.fixture
def outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path``, where git looks for no repository above (as if nothing held the temp folder)."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return tmp_path


def test_sarif_uri_is_relative_to_the_repository_root_from_a_subfolder(
    cli, outside_git: Path, monkeypatch: pytest.MonkeyPatch
):
    repo = GitRepo(outside_git / "mono")
    team = _catalog_folder(repo.root / "teams" / "risk")
    expected = {
        "MC005": {"uri": "teams/risk/models.yaml", "uriBaseId": "%SRCROOT%"},
        "VALIDATE": {"uri": "teams/risk/models.yaml", "uriBaseId": "%SRCROOT%"},
        "MC900": {"uri": "teams/risk/policies/waivers.yaml", "uriBaseId": "%SRCROOT%"},
        "MC011": {
            "uri": "teams/risk/cdktf.out/stacks/production-kubernetes/cdk.tf.json",
            "uriBaseId": "%SRCROOT%",
        },
    }
    monkeypatch.chdir(team)  # `modelcat policy check models.yaml` in the team's folder
    from_team = _sarif(cli, "models.yaml", "cdktf.out")
    assert _locations(from_team) == expected
    assert from_team["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.root.resolve().as_uri() + "/"
    elsewhere = outside_git / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # absolute paths given from outside the repository
    from_outside = _sarif(cli, team / "models.yaml", team / "cdktf.out")
    assert _locations(from_outside) == expected
    assert from_outside["runs"][0]["originalUriBaseIds"] == from_team["runs"][0]["originalUriBaseIds"]
    assert sarif_errors(from_outside) == []


def test_sarif_outside_a_git_repository_is_relative_to_the_catalog_folder(
    cli, outside_git: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = _catalog_folder(outside_git / "plain")
    monkeypatch.chdir(outside_git)
    sarif = _sarif(cli, "plain/models.yaml", "plain/cdktf.out")
    assert {rule: where["uri"] for rule, where in _locations(sarif).items()} == {
        "MC005": "models.yaml",
        "VALIDATE": "models.yaml",
        "MC900": "policies/waivers.yaml",
        "MC011": "cdktf.out/stacks/production-kubernetes/cdk.tf.json",
    }
    base = sarif["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]
    assert base["uri"] == folder.resolve().as_uri() + "/"
    assert "not in a git repository" in base["description"]["text"]


POLICIES_PAGE = ROOT / "docs" / "policies.md"


def _policies_page_anchors() -> set[str]:
    return set(re.findall(r'<a id="([a-z0-9-]+)"></a>', POLICIES_PAGE.read_text(encoding="utf-8")))


def test_sarif_rules_have_their_declared_names_descriptions_help_and_policies_page_anchors(
    cli, outside_git: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = _catalog_folder(outside_git / "plain")
    driver = _sarif(cli, folder / "models.yaml", folder / "cdktf.out")["runs"][0]["tool"]["driver"]
    assert driver["version"] == version("modelcat") and driver["semanticVersion"] == version("modelcat")
    rules = {r["id"]: r for r in driver["rules"]}
    assert {i: r.get("name") for i, r in rules.items()} == NAMES
    anchors = _policies_page_anchors()
    for rule in rules.values():
        assert re.fullmatch(r"(?:[A-Z][a-z0-9]+)+", rule["name"]), rule["id"]  # PascalCase as SARIF2012 reads it
        assert rule["shortDescription"]["text"], rule["id"]
        assert len(rule["fullDescription"]["text"]) > len(rule["shortDescription"]["text"]), rule["id"]
        assert rule["fullDescription"]["text"] in rule["help"]["text"], rule["id"]
        assert rule["helpUri"] in rule["help"]["markdown"], rule["id"]
        docs, _, anchor = rule["helpUri"].partition("#")
        assert docs == "https://github.com/modelcat/modelcat/blob/main/docs/policies.md", rule["id"]
        assert anchor in anchors, rule["id"]
    assert "waive it in the policies' waivers.yaml" in rules["MC005"]["help"]["text"]  # a rule's finding can be
    assert "waive it" not in rules["VALIDATE"]["help"]["text"]  # ... a validation error cannot
    assert rules["MC001"]["shortDescription"]["text"] == "Artifact pinned by digest"
    # the documentation's address can be set, e.g. to a fork's or an internal copy of the policies page
    monkeypatch.setenv("MODELCAT_DOCS_URL", "https://docs.example.com/modelcat/policies.html")
    driver = _sarif(cli, folder / "models.yaml", folder / "cdktf.out")["runs"][0]["tool"]["driver"]
    assert {r["helpUri"] for r in driver["rules"] if r["id"] == "MC005"} == {
        "https://docs.example.com/modelcat/policies.html#mc005"
    }


CUSTOM = """package acme.team_label

import rego.v1

rule := {
	"id": "ACME001",
	"title": "Models named team-*",
	"name": "%s",
	"help_uri": "https://wiki.example.com/catalog/acme001",
	"severity": "deny",
	"kinds": ["model"],
}

deny := [msg |
	input.kind == "model"
	not startswith(input.model.name, "team-")
	msg := sprintf("model %%s is not named team-*", [input.model.name])
]
"""


def test_a_rule_declares_its_own_name_and_help_uri(cli, outside_git: Path):
    folder = _catalog_folder(outside_git / "plain")
    (folder / "policies" / "acme001.rego").write_text(CUSTOM % "ModelsNamedTeam")
    driver = _sarif(cli, folder / "models.yaml", folder / "cdktf.out")["runs"][0]["tool"]["driver"]
    (acme,) = [r for r in driver["rules"] if r["id"] == "ACME001"]
    assert acme["name"] == "ModelsNamedTeam" and acme["helpUri"] == "https://wiki.example.com/catalog/acme001"
    assert acme["fullDescription"]["text"] == "Models named team-*"  # no description declared: the title
    (folder / "policies" / "acme001.rego").write_text(CUSTOM % "Models named team")
    refused = cli("policy", "check", folder / "models.yaml", "--format", "sarif")
    assert refused.exit_code == 2 and "acme001.rego" in refused.output and "name" in refused.output


def test_every_rule_and_finding_kind_has_its_anchor_on_the_policies_page():
    """Each rule of policies/ and each finding that is not a Rego rule (VALIDATE, VERIFY, SIGNATURE, the
    waivers' MC900 and MC901) has its anchor on docs/policies.md, where helpUri points."""
    ids = [re.search(r'"id": "([A-Z0-9]+)"', p.read_text()).group(1) for p in policy_files(ROOT / "policies")]
    assert len(ids) == 14
    assert {i.lower() for i in [*ids, "VALIDATE", "VERIFY", "SIGNATURE", "MC900", "MC901"]} <= _policies_page_anchors()


@pytest.mark.slow
def test_policy_check_sarif_passes_microsofts_validator(cli, outside_git: Path, monkeypatch: pytest.MonkeyPatch):
    repo = GitRepo(outside_git / "mono")
    team = _catalog_folder(repo.root / "teams" / "risk")
    monkeypatch.chdir(team)
    logs = {"findings, a waiver, synthesized JSON": _sarif(cli, "models.yaml", "cdktf.out")}
    demo = cli("policy", "check", DEMO, "--now", NOW, "--policies", ROOT / "policies", "--format", "sarif")
    logs["the demo (one warning)"] = json.loads(demo.output)
    Path("models.yaml").write_text(Path("models.yaml").read_text().replace("owner: ml@example.com", "owner: TBD"))
    Path("policies/waivers.yaml").write_text(EXPIRED_WAIVER.replace("2026-01-31", "2027-01-31"))
    unused = cli("policy", "check", "models.yaml", "--now", NOW, "--format", "sarif")
    logs["an owner placeholder, a waiver used"] = json.loads(unused.output)
    for what, log in logs.items():
        assert multitool_problems(log, outside_git / "validator") == [], what
    # and the validator does report what code scanning rejects: the check above is not vacuous
    broken = logs["the demo (one warning)"]
    del broken["runs"][0]["tool"]["driver"]["version"]
    del broken["runs"][0]["tool"]["driver"]["semanticVersion"]
    del broken["runs"][0]["tool"]["driver"]["rules"][0]["help"]
    problems = multitool_problems(broken, outside_git / "validator")
    assert {p.split(":")[0] for p in problems} == {"SARIF2005", "GH2012"}, problems


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown a repository")
def test_sarif_refuses_to_guess_when_git_cannot_read_the_repository(
    cli, outside_git: Path, monkeypatch: pytest.MonkeyPatch
):
    """A repository git refuses to read (owned by another user: "dubious ownership") is an
    environment error (exit 2), not SARIF with paths relative to the wrong folder."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)  # no safe.directory exception from the machine
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo = GitRepo(outside_git / "theirs")
    folder = _catalog_folder(repo.root / "team")
    for path in [repo.root, *repo.root.rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    result = cli("policy", "check", folder / "models.yaml", "--format", "sarif")
    assert result.exit_code == 2 and "dubious ownership" in result.output
