"""What every command shares: --format, --traceback, --catalog, and one mapping from errors to exit codes."""

from __future__ import annotations

import functools
import select
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar, cast, overload

import click

from catalog.cli.render import Failure, problem_lines, problems_json
from catalog.errors import ModelcatError, UsageError

__all__ = ["DEFAULT_CATALOG", "INTERNAL_ERROR", "CommandGroup", "catalog_option", "command", "examples", "parse_now"]

DEFAULT_CATALOG = "models.yaml"
INTERNAL_ERROR = 3  # the exit code of an unexpected exception (a bug), apart from usage and environment errors (2)
F = TypeVar("F", bound=Callable[..., Any])

_CATALOG_PATH = click.Path(dir_okay=False, path_type=Path)
_ARGS = "modelcat.args"  # ctx.meta key: the arguments after the program's name


def examples(*lines: str) -> str:
    """The section every ``--help`` page ends with (click's ``epilog``): ``Examples:`` and ``lines``,
    each a whole command line, kept as written."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def parse_now(value: str | None) -> datetime:
    """``--now``: a date (or date and time) to judge ages against; default: now, in UTC."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--now {value!r} is not a date such as 2026-11-27") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def catalog_option(*, positional: bool = False) -> Callable[[F], F]:
    """``--catalog PATH`` (default models.yaml), given to the command as ``path``: how every command
    takes the catalog. ``positional``: a first argument [CATALOG] is accepted as well, for the
    commands that took the catalog that way before (validate, show, policy check, policy input)."""
    help_text = "The catalog file." + (" Also accepted as the argument [CATALOG]." if positional else "")
    if not positional:
        return click.option(
            "--catalog", "path", default=DEFAULT_CATALOG, show_default=True, metavar="PATH", type=_CATALOG_PATH,
            help=help_text,
        )  # fmt: skip

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def either(*args: Any, path: Path | None, catalog_argument: Path | None, **kwargs: Any) -> Any:
            if path is not None and catalog_argument is not None and path != catalog_argument:
                raise click.UsageError(f"two catalogs: {catalog_argument} and --catalog {path}; give one")
            return func(*args, path=path or catalog_argument or Path(DEFAULT_CATALOG), **kwargs)

        either = click.option(
            "--catalog", "path", default=None, metavar="PATH", type=_CATALOG_PATH,
            help=f"{help_text}  [default: {DEFAULT_CATALOG}]",
        )(either)  # fmt: skip
        argument = click.argument("catalog_argument", required=False, metavar="[CATALOG]", type=_CATALOG_PATH)
        return cast(F, argument(either))  # takes catalog_argument and gives func path: not func's own signature

    return decorate


def _command_path() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx is not None else "modelcat"


def _fail(fmt: str, error: ModelcatError) -> int:
    problems = getattr(error, "problems", [])
    if fmt == "json":
        click.echo(problems_json(getattr(error, "path", ""), problems, Failure.of(error, _command_path())))
    else:
        for line in problem_lines(problems):
            click.echo(line, err=True)
        click.echo(click.style("error: ", fg="red", bold=True) + str(error), err=True)
    return error.exit_code


def _fail_unexpectedly(fmt: str, failure: Failure, exit_code: int, label: str = "") -> int:
    """A failure no ModelcatError describes (an internal error, Ctrl-C): JSON, or text on stderr."""
    if fmt == "json":
        click.echo(problems_json("", [], failure))
    else:
        click.echo((click.style(label, fg="red", bold=True) if label else "") + failure.message, err=True)
        if label:
            click.echo(failure.hint, err=True)
    return exit_code


def _stdout_closed() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone, as after ``| head -1``."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, ValueError, OSError):  # no file descriptor (a test runner's buffer)
        return False


_Body = Callable[..., int | None]  # a command's function: returns its exit code (None: 0)
_Command = Callable[..., None]  # ... wrapped by @command: exits with that code


@overload
def command(func: _Body, *, formats: Sequence[str] = ...) -> _Command: ...
@overload
def command(func: None = None, *, formats: Sequence[str] = ...) -> Callable[[_Body], _Command]: ...
def command(
    func: _Body | None = None, *, formats: Sequence[str] = ("text", "json")
) -> _Command | Callable[[_Body], _Command]:
    """Add --format (one of ``formats``, the first the default) and --traceback; map modelcat errors
    to a message and their exit code. Errors are rendered as JSON for ``json`` (``"ok": false`` and
    an ``error`` object), else as text. Any other exception is an internal error: exit 3
    (``INTERNAL_ERROR``), JSON code ``internal``. A closed stdout (``| head``) ends the command quietly.

    ``@command`` or ``@command(formats=("text", "json", "markdown"))``.
    """
    if func is None:
        return functools.partial(command, formats=formats)

    @click.option("--format", "fmt", type=click.Choice(list(formats)), default=formats[0], show_default=True)
    @click.option("--traceback", is_flag=True, help="Show the Python traceback of unexpected errors.")
    @functools.wraps(func)
    def wrapper(fmt: str, traceback: bool, **kwargs: Any) -> None:
        try:
            code = func(fmt=fmt, **kwargs) or 0
        except ModelcatError as e:
            if traceback:
                raise
            code = _fail(fmt, e)
        except (KeyboardInterrupt, click.exceptions.Abort):  # Ctrl-C, also at a confirmation prompt
            failure = Failure("interrupted", "interrupted", "stopped by Ctrl-C before the end; run it again")
            code = _fail_unexpectedly(fmt, failure, 130)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as e:  # the last line of defence, shown without a traceback
            if isinstance(e, BrokenPipeError) and _stdout_closed():
                raise  # click's main ends quietly (exit 1), as Python's docs on SIGPIPE advise
            if traceback:
                raise
            failure = Failure("internal", f"{type(e).__name__}: {e}", "run again with --traceback and report it")
            code = _fail_unexpectedly(fmt, failure, INTERNAL_ERROR, label="internal error: ")
        sys.exit(code)

    return wrapper


def _asks_for_json(args: Sequence[str]) -> bool:
    return "--format=json" in args or ("--format", "json") in pairwise(args)


class CommandGroup(click.Group):
    """The ``modelcat`` group: click's own usage errors (an unknown option, a missing argument) are
    JSON too when the command line asks for ``--format json``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGS] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            if not _asks_for_json(ctx.meta.get(_ARGS, ())):
                raise
            where = (e.ctx or ctx).command_path
            click.echo(problems_json("", [], Failure.of(UsageError(e.format_message()), where)))
            ctx.exit(e.exit_code)
