"""What every command shares: --format, --traceback, and one mapping from errors to exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from catalog.cli.render import problem_lines, problems_json
from catalog.errors import ModelcatError, UsageError

__all__ = ["DEFAULT_CATALOG", "command", "parse_now"]

DEFAULT_CATALOG = "models.yaml"


def parse_now(value: str | None) -> datetime:
    """``--now``: a date (or date and time) to judge ages against; default: now, in UTC."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--now {value!r} is not a date such as 2026-11-27") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fail(fmt: str, error: ModelcatError) -> int:
    problems = getattr(error, "problems", [])
    if fmt == "json":
        click.echo(problems_json(getattr(error, "path", ""), problems, error=str(error)))
    else:
        for line in problem_lines(problems):
            click.echo(line, err=True)
        click.echo(click.style("error: ", fg="red", bold=True) + str(error), err=True)
    return error.exit_code


def command(func: Callable[..., int | None] | None = None, *, formats: Sequence[str] = ("text", "json")) -> Any:
    """Add --format (one of ``formats``, the first the default) and --traceback; map modelcat errors
    to a message and their exit code. Errors are rendered as JSON for ``json``, else as text.

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
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            code = 130
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as e:  # the last line of defence, shown without a traceback
            if traceback:
                raise
            click.echo(click.style("internal error: ", fg="red", bold=True) + f"{type(e).__name__}: {e}", err=True)
            click.echo("run again with --traceback and report it", err=True)
            code = 2
        sys.exit(code)

    return wrapper
