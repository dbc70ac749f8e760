"""Every command that reads the catalog takes it as ``--catalog PATH`` (one shared option);
validate, show, policy check and policy input also take it as their first argument, as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest

from catalog.cli.main import main
from tests.cli.helpers import commands_of
from tests.helpers import ROOT

READS_THE_CATALOG = {
    "validate", "show", "bind", "register", "verify", "synth", "plan", "apply", "destroy", "status", "predict",
    "smoke", "policy check", "policy input", "diff", "review", "feedback import", "analyze", "rollout start",
    "rollout step", "rollout promote", "rollout pause", "rollout resume", "rollout abort", "rollout status",
    "rollout run", "rollout history", "rollout replay", "rollback", "sign", "attest",
}  # fmt: skip
ALSO_AS_AN_ARGUMENT = {"validate", "show", "policy check", "policy input"}
NOW = "2026-11-27"


@pytest.fixture
def elsewhere(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo catalog (with artifacts and policies) in a folder that is not the current one."""
    shutil.copytree(ROOT / "policies", workspace / "policies")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return workspace / "models.yaml"


def test_every_command_takes_the_catalog_the_same_way() -> None:
    for name, cmd in commands_of(main).items():
        options = [p for p in cmd.params if "--catalog" in p.opts]
        arguments = [p for p in cmd.params if isinstance(p, click.Argument) and p.name == "catalog_argument"]
        if name in READS_THE_CATALOG:
            assert len(options) == 1 and options[0].name == "path", name
            assert options[0].help and options[0].help.startswith("The catalog file."), name
            assert bool(arguments) == (name in ALSO_AS_AN_ARGUMENT), name
        else:
            assert not options and not arguments, name


def test_the_catalog_option_and_the_old_argument_give_the_same_answer(cli, elsewhere: Path) -> None:
    for command, rest in ((["validate"], []), (["show"], ["--now", NOW]), (["policy", "check"], ["--now", NOW]),
                          (["policy", "input"], [])):  # fmt: skip
        by_option = cli(*command, "--catalog", elsewhere, *rest, "--format", "json")
        by_argument = cli(*command, elsewhere, *rest, "--format", "json")
        assert by_option.exit_code == by_argument.exit_code == 0, (command, by_option.output, by_argument.output)
        assert json.loads(by_option.stdout) == json.loads(by_argument.stdout), command
    same = cli("validate", elsewhere, "--catalog", elsewhere)
    assert same.exit_code == 0, same.output
    two = cli("validate", elsewhere, "--catalog", elsewhere.parent / "other.yaml")
    assert two.exit_code == 2 and "two catalogs" in two.output


def test_what_the_makefile_readme_and_init_ci_files_run_still_works(cli, elsewhere: Path, monkeypatch) -> None:
    monkeypatch.chdir(elsewhere.parent)
    for command in (["validate", "models.yaml"], ["verify", "--catalog", "models.yaml"], ["show", "models.yaml"],
                    ["validate"], ["verify"], ["synth", "--catalog", "models.yaml", "--out", "out"],
                    ["policy", "check", "--now", NOW]):  # fmt: skip
        result = cli(*command)
        assert result.exit_code == 0, (command, result.output)
