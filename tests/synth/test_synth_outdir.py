"""A relative ``--out`` is the caller's, even after the CDK's Node process started elsewhere: jsii
starts Node once per Python process and Node keeps the working directory it started in."""

from __future__ import annotations

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
