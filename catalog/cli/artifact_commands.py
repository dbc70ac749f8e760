"""Commands on artifacts: register, verify, inspect."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args, overload

import click

from catalog.cli.common import catalog_option, command, examples
from catalog.cli.render import Failure, verdict
from catalog.domain.models import STAGES, Task
from catalog.errors import UsageError
from catalog.wording import plural

if TYPE_CHECKING:
    from catalog.artifacts.hashing import Progress
    from catalog.artifacts.verify import VerifyResult
    from catalog.domain.models import Catalog

__all__ = ["inspect", "register", "verify"]

_CATALOG_OPTION = catalog_option()


@contextmanager
def _progress_bar(total: int, label: str) -> Iterator[Progress | None]:
    """A progress bar on a terminal only; elsewhere nothing is drawn."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


@overload
def _pairs(values: tuple[str, ...], option: str, number: Literal[True]) -> dict[str, float]: ...
@overload
def _pairs(values: tuple[str, ...], option: str, number: Literal[False]) -> dict[str, str]: ...
def _pairs(values: tuple[str, ...], option: str, number: bool) -> Mapping[str, float | str]:
    parsed: dict[str, float | str] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} {value!r}: write NAME=VALUE")
        try:
            parsed[key.strip()] = float(raw) if number else raw
        except ValueError:
            raise UsageError(f"{option} {value!r}: {raw!r} is not a number") from None
    return parsed


@click.command(
    epilog=examples(
        "modelcat register fraud-scorer --version 1.5.0 --artifact fraud.onnx --metric auc=0.931",
        "modelcat register spam-filter --version 0.1.0 --artifact spam.onnx --owner ml@example.com --task classification",
    )
)
@click.argument("model")
@click.option("--version", "version", required=True, help="The new version's semantic version, e.g. 1.5.0.")
@click.option("--artifact", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--metric", "metrics", multiple=True, metavar="NAME=VALUE", help="Repeat per metric.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Repeat per label.")
@click.option("--trained-at", help="Training date (default: the artifact file's date).")
@click.option(
    "--store", help="A store of the catalog, by name or URI (default: its default store; without stores:, artifacts/)."
)
@click.option("--stage", type=click.Choice(STAGES), default="candidate", show_default=True)
@click.option("--owner", help="A new model's owner (with --task, MODEL is added to the catalog).")
@click.option("--task", type=click.Choice(get_args(Task)), help="A new model's task.")
@_CATALOG_OPTION
@command
def register(
    model: str,
    version: str,
    artifact: Path,
    metrics: tuple[str, ...],
    labels: tuple[str, ...],
    trained_at: str | None,
    store: str | None,
    stage: str,
    owner: str | None,
    task: str | None,
    path: Path,
    fmt: str,
) -> int:
    """Hash, inspect and store ARTIFACT, then append it to MODEL in the catalog as VERSION
    (adding MODEL when it is new: give its --owner and --task)."""
    with _progress_bar(artifact.stat().st_size, f"hashing {artifact.name}") as progress:
        from catalog.register import register_version

        result = register_version(
            path,
            model,
            version,
            artifact,
            metrics=_pairs(metrics, "--metric", number=True),
            labels=_pairs(labels, "--label", number=False),
            trained_at=trained_at,
            stage=stage,
            store=store,
            progress=progress,
            owner=owner,
            task=task,
        )
    notes = [f"{n.application} ({n.against}): {n.text}" for n in result.notes]
    if fmt == "json":
        body = {**verdict(None), "model": model, "version": version, "new_model": result.new_model, "uri": result.uri}
        body |= {"digest": result.digest, "size_bytes": result.size, "notes": notes}
        click.echo(json.dumps(body, indent=2))
        return 0
    click.echo(f"{path}: registered {model} {version}{' (a new model)' if result.new_model else ''}")
    click.echo(f"  digest {result.digest}  ({result.size:,} bytes)")
    click.echo(f"  stored {result.uri}")
    for note in notes:
        click.echo(f"  note: {note}")
    return 0


@click.command(epilog=examples("modelcat verify", "modelcat verify --changed-since origin/main --format json"))
@click.option("--model", help="Only this model's versions.")
@click.option("--changed-since", "revision", metavar="GITREF", help="Only artifacts new or changed since GITREF.")
@_CATALOG_OPTION
@command
def verify(model: str | None, revision: str | None, path: Path, fmt: str) -> int:
    """Fetch or read every artifact the catalog names; check digest, size, ONNX validity, signature;
    then verify the release signatures: each signed version's, and each version an environment
    requiring signatures serves, against that environment's trusted keys."""
    from catalog.nogc import no_gc
    from catalog.revisions import change_since, load_revision

    with no_gc():
        head = load_revision(path)
        catalog = head.valid()
        change = change_since(head, revision) if revision else None
    only = set(change.touched) if change is not None else None  # what `review` verifies
    notes = change.notes() if change is not None else []
    if model is not None and model not in {m.name for m in catalog.models}:
        raise UsageError(f"--model {model!r} is not in {path}")
    from catalog.artifacts.verify import select_versions, verify_versions
    from catalog.signing.checks import signatures_to_verify, verify_signatures

    chosen = select_versions(catalog, model=model, only=only)
    rows: list[VerifyResult] = []

    def show(result: VerifyResult) -> None:
        rows.append(result)
        if fmt == "text":
            mark = click.style("ok  ", fg="green") if result.ok else click.style("FAIL", fg="red", bold=True)
            click.echo(
                f"{mark} {result.model:<20} {result.version:<10} {result.size:>13,}  "
                f"{result.digest.removeprefix('sha256:')[:12]}  {result.seconds:6.2f}s  {result.message}"
            )

    root = path.resolve().parent
    verify_versions(catalog, chosen, root, on_result=show)
    failed = [r for r in rows if not r.ok]
    if change is not None:
        checks = signatures_to_verify(change.base.catalog, catalog, change.touched, unsigned=True)
    else:
        checks = signatures_to_verify(None, catalog, frozenset((m.name, v.version) for m, v in chosen), unsigned=True)
    broken = {(r.model, r.version) for r in failed}  # an artifact that failed says why already
    checks = [c for c in checks if (model is None or c[0] == model) and c[:2] not in broken]
    signatures = verify_signatures(catalog, root, checks)
    lines = _version_lines(head.text or "", catalog, [(s.model, s.version) for s in signatures])
    unverified = [s for s in signatures if not s.ok]
    if fmt == "json":
        failure = None
        if failed:
            failure = Failure(
                "artifacts_failed",
                f"{len(failed)} of {plural(len(rows), 'artifact')} failed verification",
                "each failed result says why: fix the artifact, or its digest or size in the catalog",
            )
        elif unverified:
            failure = Failure(
                "signatures_failed",
                f"{len(unverified)} of {plural(len(signatures), 'signature')} failed verification",
                "each failed signature says why: sign the version again (modelcat sign) with a key its environment trusts",
            )
        results = [asdict(r) for r in rows]
        signed = [{"file": str(path), "line": lines[(s.model, s.version)], **asdict(s)} for s in signatures]
        click.echo(json.dumps({**verdict(failure), "results": results, "signatures": signed, "notes": notes}, indent=2))
    else:
        for check in signatures:
            mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red", bold=True)
            where = "" if check.ok else f"{path}:{lines[(check.model, check.version)]}: "
            click.echo(f"{mark} {where}{check.subject}: {check.message}")
        for note in notes:
            click.echo(f"note: {note}")
        click.echo(f"{plural(len(rows), 'artifact')} checked: {len(rows) - len(failed)} verified, {len(failed)} failed")
        if signatures:
            click.echo(
                f"{plural(len(signatures), 'signature')} checked: {len(signatures) - len(unverified)} verified, "
                f"{len(unverified)} failed"
            )
    return 1 if failed or unverified else 0


def _version_lines(text: str, catalog: Catalog, versions: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The line of each (model, version)'s entry in the catalog file (1 when it cannot be placed)."""
    from catalog.yamlio.positions import locate

    wanted = set(versions)
    locs = {
        (m.name, v.version): ("models", i, "versions", j)
        for i, m in enumerate(catalog.models)
        for j, v in enumerate(m.versions)
        if (m.name, v.version) in wanted
    }
    positions = locate(text, locs.values()) if locs else {}
    return {key: positions[loc].line if loc in positions else 1 for key, loc in locs.items()}


@click.command(
    epilog=examples(
        "modelcat inspect fraud.onnx",
        "modelcat inspect big-model/model.onnx --format json   # and its external data files",
    )
)
@click.argument("artifact", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@command
def inspect(artifact: Path, fmt: str) -> int:
    """Print what an ONNX file holds: the digest and size to record in models.yaml, IR version,
    opsets, producer, inputs and outputs, external data."""
    from catalog.artifacts.onnx_facts import inspect_onnx
    from catalog.artifacts.staging import hash_in_place

    facts = inspect_onnx(artifact)
    total = sum((artifact.parent / f).stat().st_size for f in facts.external_files) + artifact.stat().st_size
    with _progress_bar(total, f"hashing {artifact.name}") as progress:
        hashed = hash_in_place(artifact, facts.external_files, progress)
    if fmt == "json":
        body = {
            **verdict(None),
            "path": str(artifact),
            "digest": hashed.digest,
            "size_bytes": hashed.size,
            **facts.as_dict(),
        }
        click.echo(json.dumps(body, indent=2))
        return 0
    click.echo(f"{artifact}")
    click.echo(f"  digest: {hashed.digest}")
    click.echo(f"  size_bytes: {hashed.size}")
    click.echo(f"  ir_version {facts.ir_version}, opsets {', '.join(f'{k}={v}' for k, v in facts.opsets.items())}")
    click.echo(f"  producer {facts.producer or '-'} {facts.producer_version}".rstrip())
    for side in ("inputs", "outputs"):
        for spec in getattr(facts.signature, side):
            click.echo(f"  {side[:-1]:<6} {spec.name}: {spec.dtype}[{', '.join(map(str, spec.shape))}]")
    if facts.external_files:
        click.echo(f"  external data: {', '.join(facts.external_files)}")
    return 0
