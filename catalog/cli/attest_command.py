"""``modelcat attest``: a signed in-toto statement of a version's release, or its verification."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from catalog.cli.common import catalog_option, command, examples
from catalog.cli.render import verdict
from catalog.errors import UsageError

if TYPE_CHECKING:
    from catalog.attest import Attestation

__all__ = ["attest"]


def _lines(attestation: Attestation, out: str, verb: str) -> list[str]:
    predicate = attestation.statement["predicate"]
    release = predicate["released_from"]
    policy = predicate["policy"]
    head = (
        f"{verb} {predicate['model']} {predicate['version']} ({predicate['artifact']['digest'][:19]}): "
        f"released from {release['commit'][:12]} ({release['subject']}) at "
        f"{predicate['catalog']['file']}@{predicate['catalog']['commit'][:12]}"
    )
    lines = [head]
    for route in predicate["routes"]:
        lines.append(
            f"  route: {route['application']} ({route['environment']}) {route['weight']} % since {route['commit'][:12]}"
        )
    denies = sum(1 for f in policy["findings"] if f["severity"] == "deny")
    skipped = f", {len(policy['skipped'])} skipped" if policy["skipped"] else ""
    lines.append(
        f"  policy: {policy['decision']} ({len(policy['rules'])} rules{skipped}: {denies} denied, "
        f"{len(policy['findings']) - denies} warnings, {len(policy['waived'])} waived)"
    )
    rollout = predicate["rollout"]
    if rollout is not None:
        lines.append(f"  rollout: {rollout['id']} {rollout['decision']}, analysis {rollout['evidence_digest'][:19]}")
    bundle = predicate["bundle"]
    lines.append(
        f"  artifact signature: {bundle['key']} v{bundle['key_version']}" if bundle else "  artifact signature: none"
    )
    lines.append(f"  attestation signed by {attestation.key.name} v{attestation.key.version}: {out}")
    return lines


@click.command(
    "attest",
    epilog=examples(
        "modelcat attest fraud-scorer --version 1.4.0 --key keys/demo-release.pem",
        "modelcat attest --verify fraud-scorer-1.4.0.attestation.json",
    ),
)
@click.argument("model", required=False)
@click.option("--version", "version", help="The version to attest.")
@click.option("--key", "key_ref", help="The signing key: a PEM file, or vault://MOUNT/keys/NAME (Vault Transit).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the attestation goes (default: MODEL-VERSION.attestation.json in the current folder).",
)
@click.option(
    "--verify",
    "verify_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Verify this attestation instead: its signature against the trust policy, its facts against git.",
)
@click.option(
    "--policies",
    "policies_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the Rego rules that judge the version (default: policies/ beside the catalog).",
)
@catalog_option()
@command
def attest(
    model: str | None,
    version: str | None,
    key_ref: str | None,
    out: Path | None,
    verify_file: Path | None,
    policies_dir: Path | None,
    path: Path,
    fmt: str,
) -> int:
    """Sign an in-toto statement of MODEL's release of --version: its artifact's digest bound to the
    catalog commit that released it, its metrics, the policies' decision and the analysis of the
    rollout that promoted it. With --verify FILE, check one."""
    from catalog.attest import attest_version, verify_attestation
    from catalog.files import atomic_write

    if verify_file is not None:
        if model or version or key_ref or out:
            raise UsageError("--verify FILE takes no MODEL, --version, --key or --out")
        try:
            data = verify_file.read_bytes()
        except OSError as e:
            raise UsageError(f"--verify {verify_file}: {e.strerror or e}") from e
        checked = verify_attestation(path, data, str(verify_file))
        return _render(fmt, checked, str(verify_file), "verified")
    if not model or not version or not key_ref:
        raise UsageError("give MODEL, --version and --key (or --verify FILE)")
    made = attest_version(
        path,
        model,
        version,
        key_ref,
        policies_dir=policies_dir if policies_dir is not None else path.parent / "policies",
        now=datetime.now(UTC),
    )
    target = out if out is not None else Path(f"{model}-{version}.attestation.json")
    atomic_write(target, made.bundle)
    return _render(fmt, made, str(target), "attested")


def _render(fmt: str, attestation: Attestation, file: str, verb: str) -> int:
    if fmt == "json":
        key = {"name": attestation.key.name, "version": attestation.key.version, "hint": attestation.key.hint}
        click.echo(
            json.dumps({**verdict(None), "file": file, "key": key, "statement": attestation.statement}, indent=2)
        )
    else:
        for line in _lines(attestation, file, verb):
            click.echo(line)
    return 0
