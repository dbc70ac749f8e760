"""`modelcat fetch`: one artifact by digest into a given place, verified (a cluster's init container);
with its signing bundle and the trusted keys, its release signature verified too."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from catalog.cli.common import command, examples
from catalog.cli.render import verdict
from catalog.errors import UsageError
from catalog.serving.signature import signature_info, signature_text

if TYPE_CHECKING:
    from catalog.signing.verify import Verified

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
@click.option("--bundle", "bundle_source", help="The version's signing bundle: URL, oci:// URI or path.")
@click.option("--bundle-digest", help="sha256:<64 hex> the catalog records for the bundle.")
@click.option("--bundle-out", type=click.Path(path_type=Path), help="Where the bundle goes (for the replica).")
@click.option(
    "--trusted-keys",
    help='JSON list of the trusted keys: [{"name", "pem" | "vault", "min_version"}] (Vault keys read from VAULT_ADDR).',
)
@click.option("--require-signatures", is_flag=True, help="Refuse a version without a bundle.")
@click.option(
    "--trust-out", type=click.Path(path_type=Path), help="Where the trust file goes (for the replica's --trust)."
)
@command
def fetch(
    fmt: str,
    source: str,
    digest: str,
    size: int,
    out: Path,
    bundle_source: str | None,
    bundle_digest: str | None,
    bundle_out: Path | None,
    trusted_keys: str | None,
    require_signatures: bool,
    trust_out: Path | None,
) -> int:
    """Fetch SOURCE (an http(s):// URL, an oci:// URI or a local path) to --out, refused unless its
    digest and size are the catalog's. An http token is read from $MODELCAT_FETCH_TOKEN (never an
    argument, so it is not in the process list) and sent as a bearer token.

    With --trusted-keys (and --bundle, or --require-signatures), the release signature is verified
    too: the bundle fetched by digest to --bundle-out, the keys resolved (Vault Transit keys: every
    version from min_version) into the trust file --trust-out, and the artifact checked against
    them; a bad, untrusted or missing required signature exits 1 with the reason."""
    from catalog.artifacts.fetch import TOKEN_ENV, fetch_artifact

    token = os.environ.get(TOKEN_ENV) or None
    hashed = fetch_artifact(source, digest, size, out, token=token)
    signed = None
    if trusted_keys is not None:
        signed = _verify_release(
            out, source, bundle_source, bundle_digest, bundle_out, trusted_keys, require_signatures, trust_out, token
        )
    elif bundle_source or require_signatures:
        raise UsageError("--bundle and --require-signatures need --trusted-keys")
    checked = {"signature": signature_info(signed)} if trusted_keys is not None else {}
    if fmt == "json":
        fields = {"source": source, "digest": hashed.digest, "size": hashed.size, "out": str(out)}
        click.echo(json.dumps({**verdict(None), **fields, **checked}))
    else:
        signature = f", {signature_text(checked['signature'])}" if checked else ""
        click.echo(f"fetched {source} ({hashed.size:,} bytes, {hashed.digest}) to {out}{signature}")
    return 0


def _verify_release(
    artifact: Path,
    source: str,
    bundle_source: str | None,
    bundle_digest: str | None,
    bundle_out: Path | None,
    trusted_keys: str,
    required: bool,
    trust_out: Path | None,
    token: str | None,
) -> Verified | None:
    """The release check of a fetched artifact; its bundle and trust file written for the replica."""
    from catalog.artifacts.fetch import fetch_blob
    from catalog.files import atomic_write
    from catalog.serving.signature import resolve_keys, trust_document, verify_release
    from catalog.signing.verify import MAX_BUNDLE_BYTES

    if trust_out is None or (bundle_source and (bundle_digest is None or bundle_out is None)):
        raise UsageError("--trusted-keys needs --trust-out, and --bundle needs --bundle-digest and --bundle-out")
    try:
        blocks = json.loads(trusted_keys)
        trust = resolve_keys(blocks, required)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise UsageError(f"--trusted-keys is not a JSON list of keys ({type(e).__name__}: {e})") from e
    trust_out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(trust_out, trust_document(trust))
    if bundle_source and bundle_out is not None:
        bundle_out.parent.mkdir(parents=True, exist_ok=True)
        data = fetch_blob(bundle_source, str(bundle_digest), MAX_BUNDLE_BYTES, bundle_out.parent, token)
        atomic_write(bundle_out, data)
    bundle = bundle_out if bundle_source else None
    return verify_release(artifact, bundle, bundle_digest, trust, source)
