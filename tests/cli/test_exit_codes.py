"""The exit codes every command shares: 2 for a usage or environment error, 3 for an internal one.

An internal error (an exception no ModelcatError describes: a bug) must not be taken for a usage
error: a CI script that retries on 2, or reports "check your arguments", would hide the bug."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner

from catalog.cli.common import command
from catalog.errors import UsageError


@click.command()
@click.option("--fail", type=click.Choice(["bug", "usage"]), required=True)
@command
def fails(fail: str, fmt: str) -> int:
    if fail == "usage":
        raise UsageError("--fail usage: as asked")
    raise RuntimeError("a bug")


def test_an_internal_error_exits_3_and_a_usage_error_2() -> None:
    bug = CliRunner().invoke(fails, ["--fail", "bug"])
    assert bug.exit_code == 3, bug.output
    assert bug.stderr.startswith("internal error: RuntimeError: a bug\n"), bug.stderr
    usage = CliRunner().invoke(fails, ["--fail", "usage"])
    assert usage.exit_code == 2, usage.output
    assert "internal error" not in usage.stderr


def test_an_internal_error_in_json_is_code_internal_with_exit_3() -> None:
    result = CliRunner().invoke(fails, ["--fail", "bug", "--format", "json"])
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["error"]["code"] == "internal"
    assert document["error"]["message"] == "RuntimeError: a bug"
