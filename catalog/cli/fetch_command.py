"""`modelcat fetch`: one artifact by digest into a given place, verified (a cluster's init container)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from catalog.cli.common import command, examples
from catalog.cli.render import verdict

__all__ = ["fetch"]


@click.command(
    "fetch",
    epilog=examples(
        "modelcat fetch https://artifacts.example.com/fraud.onnx --digest sha256:fbe81f1d... --size 2752 --out model.onnx"
    ),
)
@click.argument("source")
@click.option("--digest", required=True, help="sha256:<64 hex> the catalog names for the artifact.")
@click.option("--size", required=True, type=click.IntRange(1), help="size_bytes the catalog names.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Where the artifact goes (a file, or a folder for a multi-file artifact); replaced if present.",
)
@command
def fetch(fmt: str, source: str, digest: str, size: int, out: Path) -> int:
    """Fetch SOURCE (an http(s):// URL, an oci:// URI or a local path) to --out, refused unless its
    digest and size are the catalog's. An http token is read from $MODELCAT_FETCH_TOKEN (never an
    argument, so it is not in the process list) and sent as a bearer token."""
    from catalog.artifacts.fetch import TOKEN_ENV, fetch_artifact

    hashed = fetch_artifact(source, digest, size, out, token=os.environ.get(TOKEN_ENV) or None)
    if fmt == "json":
        click.echo(
            json.dumps(
                {**verdict(None), "source": source, "digest": hashed.digest, "size": hashed.size, "out": str(out)}
            )
        )
    else:
        click.echo(f"fetched {source} ({hashed.size:,} bytes, {hashed.digest}) to {out}")
    return 0
