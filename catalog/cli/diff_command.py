"""``modelcat diff BASE [HEAD]``: what a change to models.yaml does, in model terms, with its blast radius."""

from __future__ import annotations

import json
from pathlib import Path

import click

from catalog.cli.common import catalog_option, command, examples
from catalog.cli.diff_render import diff_json, diff_markdown, diff_text
from catalog.cli.render import verdict
from catalog.synth import TARGETS

__all__ = ["diff"]


@click.command(
    "diff", epilog=examples("modelcat diff main", "modelcat diff v1.0 v1.1 --format markdown --no-blast-radius")
)
@click.argument("base")
@click.argument("head", required=False)
@catalog_option()
@click.option("--no-blast-radius", is_flag=True, help="Leave out the resources an apply would change.")
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    default=None,
    help="Blast radius as if every environment deployed to this target (default: each environment's own).",
)
@command(formats=("text", "json", "markdown"))
def diff(base: str, head: str | None, path: Path, no_blast_radius: bool, target: str | None, fmt: str) -> int:
    """What HEAD (default: the working tree's file) changes in the catalog relative to BASE, two git
    revisions: models, versions, digests, routes and weights, rollout, environments; and per stack
    the resources an apply would create, update, replace or delete. Exit 0 with or without changes."""
    from catalog.diffing import diff_revisions

    outcome = diff_revisions(path, base, head, blast=not no_blast_radius, target=target)
    if fmt == "json":
        click.echo(json.dumps({**verdict(None), **diff_json(outcome)}, indent=2))
    elif fmt == "markdown":
        click.echo(diff_markdown(outcome), nl=False)
    else:
        for line in diff_text(outcome):
            click.echo(line)
    return 0
