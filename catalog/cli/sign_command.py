"""`modelcat sign`: an OpenSSF model signing bundle over a version's artifact, recorded in models.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import click

from catalog.cli.common import catalog_option, command, examples
from catalog.cli.render import verdict

__all__ = ["sign"]


@click.command(
    "sign",
    epilog=examples(
        "modelcat sign fraud-scorer --version 1.4.0 --key keys/demo-release.pem",
        "modelcat sign fraud-scorer --version 1.4.0 --key vault://transit/keys/release --format json",
    ),
)
@click.argument("model")
@click.option("--version", "version", required=True, help="The version to sign, e.g. 1.4.0.")
@click.option(
    "--key",
    "key_ref",
    required=True,
    metavar="REF",
    help="A private EC P-256/P-384 PEM file (development), or a Vault Transit key: vault://MOUNT/keys/NAME "
    "(VAULT_ADDR, VAULT_TOKEN from the environment). It must be one of the catalog's trust.keys.",
)
@click.option("--key-name", help="The trust.keys name to record (default: the trust key that is --key).")
@catalog_option()
@command
def sign(model: str, version: str, key_ref: str, key_name: str | None, path: Path, fmt: str) -> int:
    """Sign every file of MODEL's --version artifact (fetched and checked against its digest), keep
    the bundle by digest in the store the artifact lies in, and record it as the version's
    artifact.bundle. models.yaml is unchanged when anything fails; signing again replaces the record."""
    from catalog.sign import sign_version

    if "://" not in key_ref:
        key_ref = str(Path(key_ref).absolute())  # a path on the command line is the shell's, not the catalog's
    record = sign_version(path, model, version, key_ref, key_name)
    if fmt == "json":
        click.echo(
            json.dumps(
                {**verdict(None), "model": model, "version": version, "bundle": record.model_dump(mode="json")},
                indent=2,
            )
        )
    else:
        click.echo(
            f"{path}: signed {model} {version} with {record.key} v{record.key_version}: {record.uri} ({record.digest})"
        )
    return 0
