"""Ctrl-C at a confirmation prompt (click turns it into ``Abort``) is an interruption, not an
internal error: exit 130, "interrupted", and JSON with ``"ok": false`` when JSON was asked for."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner

from catalog.cli.common import command


@click.command()
@command
def asks(fmt: str) -> int:
    click.confirm("apply these changes?", default=False, abort=True)
    return 0


def test_ctrl_c_at_a_confirmation_prompt_is_an_interruption_not_an_internal_error() -> None:
    # click.confirm raises Abort on Ctrl-C (KeyboardInterrupt) or end of input at its prompt
    text = CliRunner().invoke(asks, [], input="")
    assert text.exit_code == 130, text.output
    assert "interrupted" in text.output and "internal error" not in text.output

    as_json = CliRunner().invoke(asks, ["--format", "json"], input="")
    assert as_json.exit_code == 130
    document = json.loads(as_json.stdout[as_json.stdout.index("{") :])  # after the prompt's own text
    assert document["ok"] is False and document["error"]["code"] == "interrupted"
