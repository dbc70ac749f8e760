"""The `modelcat` command: parse arguments, call one service, render. Exit 0 ok, 1 findings, 2 usage."""

from __future__ import annotations

import json
from pathlib import Path

import click

from catalog.cli.common import CommandGroup, catalog_option, command, examples, parse_now
from catalog.cli.render import Failure, problem_lines, problems_json, show_text, summary_line, verdict
from catalog.domain.views import application_views
from catalog.editing import bind_routes
from catalog.errors import UsageError
from catalog.nogc import no_gc
from catalog.schema import DEFAULT_SCHEMA_PATH, render_schema, schema_drift
from catalog.validate import validate_file
from catalog.wording import plural

__all__ = ["main"]


@click.group(
    cls=CommandGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=examples("modelcat validate", "modelcat review origin/main   # what CI runs on a pull request"),
)
@click.version_option(package_name="modelcat")
def main() -> None:
    """modelcat: the model catalog as code (models.yaml)."""


@main.command(epilog=examples("modelcat validate", "modelcat validate teams/risk/models.yaml --format json"))
@catalog_option(positional=True)
@command
def validate(path: Path, fmt: str) -> int:
    """Check the catalog (default models.yaml): YAML, schema and cross-references; report every
    problem (and warn when git ignores a folder the catalog keeps artifacts in)."""
    with no_gc():
        report = validate_file(path, git=True)
    if fmt == "json":
        click.echo(problems_json(str(path), report.problems))
    else:
        for line in problem_lines(report.problems):
            click.echo(line, err=not report.ok)
        if report.ok and report.catalog is not None:
            c = report.catalog
            n_versions = sum(len(m.versions) for m in c.models)
            click.echo(
                f"{path}: valid ({plural(len(c.models), 'model')}, {plural(n_versions, 'version')}, "
                f"{plural(len(c.applications), 'application')}"
                + (f", {plural(len(report.warnings), 'warning')})" if report.warnings else ")")
            )
        else:
            click.echo(summary_line(str(path), report.problems), err=True)
    return 0 if report.ok else 1


@main.command(epilog=examples("modelcat show", "modelcat show --now 2027-01-01 --format json"))
@catalog_option(positional=True)
@click.option("--now", help="Compute ages as of this date (default: today).")
@command
def show(path: Path, fmt: str, now: str | None) -> int:
    """Per application: the model versions it routes to, with weight, stage, age and key metrics, and
    where the application reports labels and its local stack has logged, each version's live metric."""
    from catalog.feedback.served import with_live_metrics

    with no_gc():
        report = validate_file(path)
    catalog = report.raise_for_errors()
    views = with_live_metrics(path, catalog, application_views(catalog, parse_now(now)))
    if fmt == "json":
        click.echo(json.dumps([v.as_dict() for v in views], indent=2))
    else:
        for line in show_text(views):
            click.echo(line)
    return 0


@main.command(
    epilog=examples(
        "modelcat schema --check", "modelcat schema --write   # after changing the catalog's pydantic models"
    )
)
@click.option("--check", is_flag=True, help="Exit 1 if the committed schema differs from the models.")
@click.option("--write", is_flag=True, help="Write the generated schema to --path.")
@click.option(
    "--path",
    "schema_path",
    default=str(DEFAULT_SCHEMA_PATH),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@command
def schema(fmt: str, check: bool, write: bool, schema_path: Path) -> int:
    """Print the catalog's JSON Schema (generated from the pydantic models)."""
    if check and write:
        raise UsageError("--check and --write exclude each other")
    if check:
        drift = schema_drift(schema_path)
        if fmt == "json":
            failure = Failure("schema_out_of_date", f"{schema_path} is out of date", "run 'modelcat schema --write'")
            click.echo(
                json.dumps({"path": str(schema_path), **verdict(failure if drift else None), "diff": drift}, indent=2)
            )
        elif drift:
            click.echo(drift, nl=False)
            click.echo(f"{schema_path} is out of date: run 'modelcat schema --write'", err=True)
        else:
            click.echo(f"{schema_path} is up to date")
        return 1 if drift else 0
    if write:
        from catalog.files import atomic_write

        schema_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(schema_path, render_schema().encode("utf-8"))
        click.echo(f"wrote {schema_path}")
        return 0
    click.echo(render_schema(), nl=False)
    return 0


def _route(value: str) -> tuple[str, int]:
    version, sep, weight = value.partition("=")
    if not sep or not version.strip() or not weight.strip().isdigit():
        raise UsageError(f"--route {value!r}: write VERSION=WEIGHT with an integer weight, e.g. 1.4.0=10")
    return version.strip(), int(weight)


@main.command(epilog=examples("modelcat bind checkout fraud-scorer --route 1.3.0=90 --route 1.4.0=10"))
@click.argument("application")
@click.argument("model")
@click.option("--route", "routes", multiple=True, required=True, metavar="VERSION=WEIGHT", help="Repeat per version.")
@catalog_option()
@command
def bind(application: str, model: str, routes: tuple[str, ...], path: Path, fmt: str) -> int:
    """Set APPLICATION's routes to MODEL's versions (weights in percent, summing to 100)."""
    parsed = [_route(r) for r in routes]
    result = bind_routes(path, application, model, parsed)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    **verdict(None),
                    "application": result.application,
                    "model": result.model,
                    "before": result.before,
                    "after": result.after,
                    "changed": result.changed,
                },
                indent=2,
            )
        )
    else:
        before = ", ".join(f"{v}={w}%" for v, w in result.before) or "(no binding)"
        after = ", ".join(f"{v}={w}%" for v, w in result.after)
        verb = "updated" if result.changed else "unchanged"
        click.echo(f"{path}: {verb} {application}/{model}: {before} -> {after}")
    return 0


def _register_artifact_commands() -> None:
    from catalog.cli import (
        artifact_commands,
        deploy_commands,
        diff_command,
        feedback_commands,
        policy_commands,
        rollout_commands,  # noqa: F401  (its commands attach to the rollout group)
        rollout_history_commands,
        runtime_commands,
    )
    from catalog.cli.analyze_command import analyze
    from catalog.cli.attest_command import attest
    from catalog.cli.fetch_command import fetch
    from catalog.cli.init_command import init
    from catalog.cli.replica_command import replica
    from catalog.cli.review_command import review
    from catalog.cli.rollout_group import rollout
    from catalog.cli.router_command import router
    from catalog.cli.serve_command import serve
    from catalog.cli.sign_command import sign

    for cmd in (
        artifact_commands.register,
        artifact_commands.verify,
        artifact_commands.inspect,
        fetch,
        replica,
        router,
        serve,
    ):
        main.add_command(cmd)
    for cmd in (deploy_commands.synth, deploy_commands.plan, deploy_commands.apply, deploy_commands.destroy):
        main.add_command(cmd)
    for cmd in (runtime_commands.status, runtime_commands.predict, runtime_commands.smoke):
        main.add_command(cmd)
    main.add_command(policy_commands.policy)
    main.add_command(feedback_commands.feedback)
    main.add_command(diff_command.diff)
    main.add_command(init)
    main.add_command(review)
    main.add_command(attest)
    main.add_command(analyze)
    main.add_command(rollout)  # with its history, replay (rollout_history_commands) ...
    main.add_command(rollout_history_commands.rollback)
    main.add_command(sign)


_register_artifact_commands()

if __name__ == "__main__":
    main()
