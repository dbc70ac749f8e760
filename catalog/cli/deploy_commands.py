"""Commands that turn the catalog into running endpoints: synth (plan, apply, destroy, status next)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from catalog.cli.common import DEFAULT_CATALOG, command
from catalog.synth import TARGETS, synthesize
from catalog.validate import validate_file

__all__ = ["synth"]

CATALOG_OPTION = click.option(
    "--catalog", "path", default=DEFAULT_CATALOG, show_default=True, type=click.Path(dir_okay=False, path_type=Path)
)
TARGET_OPTION = click.option("--target", type=click.Choice(TARGETS), default="local", show_default=True)
ENV_OPTION = click.option("--env", "envs", multiple=True, metavar="ENV", help="Only this environment (repeatable).")


@click.command()
@CATALOG_OPTION
@TARGET_OPTION
@ENV_OPTION
@click.option(
    "--out", "outdir", default="cdktf.out", show_default=True, type=click.Path(file_okay=False, path_type=Path)
)
@command
def synth(path: Path, target: str, envs: tuple[str, ...], outdir: Path, fmt: str) -> int:
    """Synthesize Terraform JSON for every environment of the catalog (one stack each)."""
    catalog = validate_file(path).raise_for_errors()
    result = synthesize(catalog, path, outdir, target, envs or None)
    if fmt == "json":
        stacks = [
            {"stack": s.name, "environment": s.environment, "target": s.target, "path": str(s.path), "sha256": s.sha256}
            for s in result.stacks
        ]
        click.echo(json.dumps({"outdir": str(outdir), "stacks": stacks}, indent=2))
    else:
        for s in result.stacks:
            click.echo(f"{s.name}: {s.path} (sha256 {s.sha256[:12]})")
    return 0
