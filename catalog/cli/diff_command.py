"""``modelcat diff BASE [HEAD]``: what a change to models.yaml does, in model terms, with its blast radius."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from catalog.cli.common import catalog_option, command
from catalog.cli.diff_render import DiffOutcome, Side, diff_json, diff_markdown, diff_text
from catalog.cli.render import verdict
from catalog.domain.models import Catalog
from catalog.errors import CatalogInvalid, UsageError
from catalog.synth.resources import TARGET_MODULES

if TYPE_CHECKING:
    from catalog.revisions import Revision
    from catalog.synth.blast import BlastRadius

__all__ = ["diff"]


@click.command("diff")
@click.argument("base")
@click.argument("head", required=False)
@catalog_option()
@click.option("--no-blast-radius", is_flag=True, help="Leave out the resources an apply would change.")
@click.option(
    "--target",
    type=click.Choice(list(TARGET_MODULES)),
    default=None,
    help="Blast radius as if every environment deployed to this target (default: each environment's own).",
)
@command(formats=("text", "json", "markdown"))
def diff(base: str, head: str | None, path: Path, no_blast_radius: bool, target: str | None, fmt: str) -> int:
    """What HEAD (default: the working tree's file) changes in the catalog relative to BASE, two git
    revisions: models, versions, digests, routes and weights, rollout, environments; and per stack
    the resources an apply would create, update, replace or delete. Exit 0 with or without changes."""
    from catalog.domain.diff import diff_catalogs
    from catalog.nogc import no_gc
    from catalog.revisions import check_revision, load_revision

    with no_gc():
        check_revision(base)
        after = load_revision(path, head)
        before = load_revision(path, base, like=after)  # models written alike are read once
        if before.errors or after.errors:
            where = ", ".join(r.source for r in (before, after) if r.errors)
            raise CatalogInvalid(where, [*before.errors, *after.errors])
        base_side, head_side = _side(before), _side(after)
        base_catalog, head_catalog = before.catalog, after.catalog
        notes = [
            f"{side.file} does not exist at {side.label}: compared as an empty catalog"
            for side in (base_side, head_side)
            if not side.present
        ]
        changes = diff_catalogs(base_catalog, head_catalog)
        blast = None
        if not no_blast_radius:
            blast = _blast(path, (base_side, head_side), base_catalog, head_catalog, target, notes)
    outcome = DiffOutcome(base_side, head_side, changes, blast, notes)
    if fmt == "json":
        click.echo(json.dumps({**verdict(None), **diff_json(outcome)}, indent=2))
    elif fmt == "markdown":
        click.echo(diff_markdown(outcome), nl=False)
    else:
        for line in diff_text(outcome):
            click.echo(line)
    return 0


def _side(revision: Revision) -> Side:
    return Side(file=str(revision.path), revision=revision.revision, present=revision.present)


def _blast(
    path: Path,
    sides: tuple[Side, Side],
    base: Catalog | None,
    head: Catalog | None,
    target: str | None,
    notes: list[str],
) -> BlastRadius | None:
    """The blast radius, or None with a note when a side cannot be synthesized (a target missing here)."""
    from catalog.domain.deployment import environments
    from catalog.synth.blast import blast_radius
    from catalog.synth.resources import synthesize_resources

    built = []
    for side, catalog in zip(sides, (base, head), strict=True):
        try:
            built.append(synthesize_resources(catalog, path, target))
        except UsageError as e:
            notes.append(f"blast radius not computed: {side.source}: {e}")
            return None
    before, after = built
    envs = [*(environments(base) if base else []), *(environments(head) if head else [])]
    return blast_radius(before, after, envs)
