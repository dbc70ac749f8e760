"""``modelcat feedback import``: outcome events from a file (delayed labels, chargebacks) into the outcome log."""

from __future__ import annotations

import json
from pathlib import Path

import click

from catalog.cli.common import catalog_option, command, examples
from catalog.cli.deploy_commands import TARGET_OPTION
from catalog.cli.render import verdict
from catalog.deploy.status import find_application
from catalog.domain.models import Application
from catalog.errors import UsageError
from catalog.layout import analytics_dir, run_dir, stack_name, state_root
from catalog.validate import validate_file

__all__ = ["feedback"]


@click.group(epilog=examples("modelcat feedback import chargebacks.csv --app checkout"))
def feedback() -> None:
    """Outcome events: what happened after the requests an application's routers answered."""


@feedback.command(
    "import",
    epilog=examples(
        "modelcat feedback import labels.jsonl --app checkout",
        "modelcat feedback import chargebacks.parquet --app checkout --env production --format json",
    ),
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--app", "application", required=True, help="The application the events are about.")
@click.option("--env", "environment", help="Its environment (default: the one the catalog gives it).")
@click.option(
    "--input-format",
    type=click.Choice(["jsonl", "csv", "parquet"]),
    help="The file's format (default: from its suffix: .jsonl/.ndjson, .csv, .parquet).",
)
@catalog_option()
@TARGET_OPTION
@command
def import_events(
    file: Path,
    application: str,
    environment: str | None,
    input_format: str | None,
    path: Path,
    target: str,
    fmt: str,
) -> int:
    """Store the outcome events of FILE (JSON lines, CSV or Parquet: event_id, request_id or unit,
    outcome, value, time) in APPLICATION's outcome log, all or nothing. Every bad row is reported
    with its line (or row) and field, and nothing is stored (exit 1). Events whose id is already
    stored are kept and counted once by `modelcat analyze`."""
    from catalog.feedback.events import format_of
    from catalog.feedback.ingest import import_events

    app, run = _run_dir(path, application, environment, target)
    outcomes = {outcome.name: outcome.kind for outcome in app.outcomes}
    result = import_events(analytics_dir(run), application, outcomes, file, format_of(file, input_format))
    if fmt == "json":
        click.echo(json.dumps({**verdict(None), **result.as_dict()}, indent=2))
    else:
        click.echo(f"{file}: {result.summary()} in {result.folder}")
    return 0


def _run_dir(path: Path, application: str, environment: str | None, target: str) -> tuple[Application, Path]:
    """The application and the run directory of its stack (``--env`` defaults to the catalog's)."""
    catalog = validate_file(path).raise_for_errors()
    app = find_application(path, catalog, application)
    environment = environment or app.environment
    if environment != app.environment:
        raise UsageError(f"{application} runs in environment {app.environment!r}, not {environment!r}")
    stack = stack_name(environment, target)
    run = run_dir(state_root(path), stack)
    if not run.is_dir():
        raise UsageError(
            f"stack {stack} of {application} has not been applied ({run} does not exist): run 'modelcat apply' first"
        )
    return app, run
