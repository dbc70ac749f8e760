"""Shared helpers of the policy tests: the repository's policies, a copy of them, a one-rule folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from catalog.policy.check import policy_data
from catalog.policy.contract import RuleEngine
from catalog.policy.findings import SubjectInput
from catalog.policy.rego import RegoPolicies
from catalog.policy.settings import Settings
from tests.helpers import ROOT

POLICIES = ROOT / "policies"
FIXTURES = POLICIES / "fixtures"
NOW = "2026-11-27"


def copy_policies(target: Path, rules: tuple[str, ...] = ()) -> Path:
    """The built-in policies (all, or only the files of ``rules``) with settings and fixtures."""
    target.mkdir(parents=True, exist_ok=True)
    for path in POLICIES.glob("*.rego"):
        if not rules or any(path.name.startswith(r.lower()) for r in rules):
            shutil.copyfile(path, target / path.name)
    shutil.copyfile(POLICIES / "settings.yaml", target / "settings.yaml")
    shutil.copytree(FIXTURES, target / "fixtures")
    return target


HEADER = 'package acme.r\n\nimport rego.v1\n\nrule := {"id": "ACME001", "title": "t", "severity": "deny", "kinds": ["model"]}\n\n'
MODEL = SubjectInput("model", "model/m", {"kind": "model", "model": {"name": "m", "owner": "o"}})


def one_rule(tmp_path: Path, body: str, engine: type[RuleEngine] = RegoPolicies) -> RuleEngine:
    """``engine`` over one rule file ``r.rego``: HEADER (rule ACME001 on models, from line 7) and ``body``."""
    path = tmp_path / "r.rego"
    path.write_text(HEADER + body)
    return engine([path], policy_data(Settings()))
