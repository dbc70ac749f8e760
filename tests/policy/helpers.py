"""Shared helpers of the policy tests: the repository's policies, a copy of them, a small catalog."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import ROOT

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
