"""`modelcat analyze`: one binding's versions compared, as text, Markdown, JSON or one HTML file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from catalog.cli.common import catalog_option, command, examples
from catalog.cli.deploy_commands import TARGET_OPTION
from catalog.cli.render import Failure
from catalog.errors import UsageError

__all__ = ["analyze", "parse_instant", "refused"]

FORMATS = ("text", "markdown", "json", "html")
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# --fail-on VERDICT: the verdicts that make the command exit 1
_REFUSED = {"rollback": ("rollback",), "hold": ("rollback", "hold")}


def parse_instant(option: str, value: str | None, now: datetime) -> datetime | None:
    """``--since``/``--until``: an RFC 3339 time (a date alone is midnight UTC; no zone is UTC) or a
    duration back from ``now`` such as ``90m``, ``24h``, ``7d``, ``2w``."""
    if value is None:
        return None
    duration = _DURATION.fullmatch(value.strip())
    if duration:
        return now - timedelta(**{_UNITS[duration[2]]: int(duration[1])})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is neither an RFC 3339 time (2026-12-01T08:00:00Z) nor a duration (24h, 7d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def refused(document: dict[str, Any], fail_on: str | None) -> Failure | None:
    """The failure ``--fail-on`` makes of the document's verdicts (None: none refused)."""
    if fail_on is None:
        return None
    bad = [v for v in document["versions"] if v["verdict"] in _REFUSED[fail_on]]
    if not bad:
        return None
    which = ", ".join(f"{v['version']} {v['verdict']}" for v in bad)
    return Failure(
        f"verdict_{fail_on}",
        f"{document['application']}/{document['model']}: {which} (--fail-on {fail_on})",
        "'versions' gives each verdict's reasons; the exit is 0 without --fail-on",
    )


def _render(document: dict[str, Any], fmt: str) -> str:
    from catalog.analysis.document import dump_document

    if fmt == "json":
        return dump_document(document)
    if fmt == "markdown":
        from catalog.analysis.text import markdown_report

        return markdown_report(document)
    if fmt == "html":
        from catalog.analysis.html import html_report

        return html_report(document)
    from catalog.analysis.text import text_report

    return text_report(document)


@click.command(
    epilog=examples(
        "modelcat analyze storefront --since 7d",
        "modelcat analyze checkout --model fraud-scorer --format html --output checkout.html",
    )
)
@click.argument("application")
@click.option("--model", help="The bound model to analyse (default: the application's only one).")
@click.option("--env", "environment", metavar="ENV", help="Check that the application runs in this environment.")
@click.option("--since", help="Start: RFC 3339 (2026-12-01T00:00:00Z) or a duration back from now (24h, 7d).")
@click.option("--until", help="End: RFC 3339 or a duration back from now (default: now).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report (in --format) to this file instead of stdout.",
)
@click.option(
    "--fail-on",
    type=click.Choice(sorted(_REFUSED)),
    help="Exit 1 when a version's verdict is rollback (or, with hold, anything but promote).",
)
@TARGET_OPTION
@catalog_option()
@command(formats=FORMATS)
def analyze(
    application: str,
    model: str | None,
    environment: str | None,
    since: str | None,
    until: str | None,
    output: Path | None,
    fail_on: str | None,
    target: str,
    path: Path,
    fmt: str,
) -> int:
    """Compare the versions APPLICATION's binding routes to: per version requests, errors, latency and
    outcomes, each metric's difference from the baseline with an interval valid however often it is
    looked at, a sample-ratio check per weight epoch, and a verdict (promote, hold or rollback) with
    its reasons; during a shadow step (the binding's mirror), the mirrored version's agreement with the
    live answers too. Exit 0 whatever the verdicts, unless --fail-on says otherwise."""
    from catalog.analysis import run
    from catalog.validate import validate_file

    now = datetime.now(UTC)
    start, end = parse_instant("--since", since, now), parse_instant("--until", until, now)
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until or 'now'}")
    catalog = validate_file(path).raise_for_errors()
    app, binding = run.find_binding(catalog, path, application, model, environment)
    document = run.analyze(catalog, path, app, binding, target, start, end)
    if binding.mirror is not None:  # a shadow step in force: how its mirrored version compares
        from catalog.analysis.shadow import analyze_shadow

        shadow = analyze_shadow(catalog, path, app, binding, binding.mirror.version, target, start, end)
        document = {**document, "shadow": {k: v for k, v in shadow.items() if k != "ok"}}
    failure = refused(document, fail_on)
    if failure is not None:
        document = {**document, "ok": False, "error": {"code": failure.code, "message": failure.message,
                                                       "hint": failure.hint}}  # fmt: skip
    rendered = _render(document, fmt)
    if output is None:
        click.echo(rendered, nl=False)
    else:
        from catalog.files import atomic_write

        atomic_write(output, rendered.encode("utf-8"))
        if fmt == "json":
            click.echo(rendered, nl=False)  # stdout is JSON whenever --format json is asked for
        else:
            verdicts = ", ".join(f"{v['version']} {v['verdict']}" for v in document["versions"] if v["verdict"])
            click.echo(f"wrote {output} ({binding.model} in {app.name}: {verdicts or 'no candidate'})")
    if failure is not None:
        if fmt != "json":
            click.echo(click.style("error: ", fg="red", bold=True) + failure.message, err=True)
        return 1
    return 0
