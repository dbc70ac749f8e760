"""Every ``--help`` page (each command and each group, ``modelcat --help`` included) ends with an
``Examples:`` section, and every example is a command line click accepts: its commands exist, its
options are the command's, its values fit their types, its required parameters are given and no
argument is left over."""

from __future__ import annotations

import shlex

import click
import pytest
from click.testing import CliRunner

from catalog.cli.main import main
from tests.cli.helpers import commands_of

SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<"}


def groups_of(group: click.Group, prefix: str = "") -> dict[str, click.Group]:
    """``group`` and every group under it, by full name ("" for modelcat itself, "policy", ...)."""
    found = {prefix.strip(): group}
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            found |= groups_of(cmd, f"{prefix}{name} ")
    return found


PAGES: dict[str, click.Command] = {**groups_of(main), **commands_of(main)}


def examples_of(help_text: str) -> list[str]:
    """The lines of the help page's closing ``Examples:`` section (which must be its last)."""
    lines = [line.strip() for line in help_text.rstrip().splitlines()]
    assert "Examples:" in lines, "no Examples: section"
    start = len(lines) - lines[::-1].index("Examples:")
    section = lines[start:]
    assert section and "" not in section, "Examples: is not the last section"
    return section


def words_of(example: str) -> list[str]:
    """An example's words up to its first shell operator (``| conftest ...``, ``> file``), comments dropped."""
    lexer = shlex.shlex(example, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if word in SHELL_OPERATORS:
            break
        words.append(word)
    return words


def problems_of(example: str) -> list[str]:
    """What click would refuse in ``example``, parsed by click's own parser (no command runs)."""
    words = words_of(example)
    if words[:1] != ["modelcat"]:
        return [f"does not start with modelcat: {example}"]
    command: click.Command = main
    args = words[1:]
    ctx = click.Context(main, info_name="modelcat")
    while isinstance(command, click.Group):
        if not args or args[0].startswith("-"):
            return [f"names no command of {ctx.command_path}: {example}"]
        sub = command.get_command(ctx, args[0])
        if sub is None:
            return [f"{ctx.command_path} has no command {args[0]!r}: {example}"]
        command, ctx, args = sub, click.Context(sub, info_name=args[0], parent=ctx), args[1:]
    try:
        values, leftover, _ = command.make_parser(ctx).parse_args(args=list(args))
    except click.UsageError as e:
        return [f"{e.format_message()}: {example}"]
    problems = [f"unexpected argument {word!r}: {example}" for word in leftover]
    for param in command.params:
        value = values.get(param.name)
        shown = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
        if value is None:
            if param.required:
                problems.append(f"missing {shown}: {example}")
            continue
        if isinstance(param.type, click.Path | click.File):
            if isinstance(param.type, click.Path) and not param.type.dir_okay and str(value).endswith("/"):
                problems.append(f"{shown} takes a file, not the folder {value}: {example}")
            continue  # example paths need not exist here
        for item in value if isinstance(value, tuple | list) else [value]:
            if isinstance(param, click.Option) and param.is_flag:
                continue
            try:
                param.type.convert(item, param, ctx)
            except click.BadParameter as e:
                problems.append(f"{shown}: {e.format_message()}: {example}")
    return problems


@pytest.mark.parametrize("name", sorted(PAGES), ids=lambda name: name or "modelcat")
def test_every_help_page_ends_with_examples_that_click_accepts(name: str):
    result = CliRunner().invoke(main, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    examples = examples_of(result.output)
    assert 1 <= len(examples) <= 2, examples  # one or two
    assert [p for example in examples for p in problems_of(example)] == []
    assert any(words_of(e)[1 : 1 + len(name.split())] == name.split() for e in examples), "no example of itself"


@pytest.mark.parametrize(
    ("example", "problem"),
    [
        ("modelcat valdate", "has no command 'valdate'"),
        ("modelcat validate --fromat json", "No such option"),
        ("modelcat validate --format yaml", "'yaml' is not one of"),
        ("modelcat bind checkout fraud-scorer", "missing --route"),
        ("modelcat inspect a.onnx b.onnx", "unexpected argument 'b.onnx'"),
        ("modelcat inspect big-model/", "takes a file, not the folder big-model/"),
        ("modelcat smoke --requests many", "'many' is not a valid integer"),
        ("modelcat policy", "names no command of modelcat policy"),
        ("python -m catalog.cli.main validate", "does not start with modelcat"),
    ],
)
def test_an_example_click_would_refuse_is_caught(example: str, problem: str):
    assert any(problem in p for p in problems_of(example)), problems_of(example)


def test_an_example_ends_at_a_shell_operator_and_its_comment():
    assert words_of("modelcat policy input > input.json  # for conftest") == ["modelcat", "policy", "input"]
    assert words_of("modelcat verify | head -1") == ["modelcat", "verify"]
    assert words_of("modelcat predict checkout --input @req.json") == [
        "modelcat", "predict", "checkout", "--input", "@req.json"
    ]  # fmt: skip
