"""A relative ``--out`` is the caller's, even after the CDK's Node process started elsewhere: jsii
starts Node once per Python process and Node keeps the working directory it started in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import DEMO, with_demo_keys


def test_a_relative_out_is_written_where_the_command_runs_after_the_cdk_started_elsewhere(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        shutil.copyfile(DEMO, folder / "models.yaml")
        with_demo_keys(folder)
    monkeypatch.chdir(first)
    assert cli("synth", "--catalog", "models.yaml", "--out", "out").exit_code == 0  # Node starts here
    monkeypatch.chdir(second)
    result = cli("synth", "--catalog", "models.yaml", "--out", "out")
    assert result.exit_code == 0, result.output
    assert (second / "out" / "stacks" / "production-local" / "cdk.tf.json").is_file()
    assert (first / "out" / "stacks" / "production-local" / "cdk.tf.json").read_bytes() == (
        second / "out" / "stacks" / "production-local" / "cdk.tf.json"
    ).read_bytes()


def test_synth_creates_the_missing_folders_of_out(cli, workspace: Path) -> None:
    out = workspace / "build" / "terraform" / "sub"
    result = cli("synth", "--catalog", workspace / "models.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "stacks" / "production-local" / "cdk.tf.json").is_file()


def test_synth_names_an_out_it_cannot_create(cli, workspace: Path) -> None:
    (workspace / "build").write_text("a file, not a folder\n")
    out = workspace / "build" / "sub"
    result = cli("synth", "--catalog", workspace / "models.yaml", "--out", out, "--format", "json")
    assert result.exit_code == 2, result.output
    report = json.loads(result.output)
    assert report["ok"] is False
    assert f"{out}: cannot create the output folder" in report["error"]["message"]
