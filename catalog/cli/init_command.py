"""``modelcat init DIR``: scaffold a catalog repository (never overwrites a file)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from catalog.cli.common import command, examples
from catalog.cli.render import verdict
from catalog.wording import plural

__all__ = ["init"]


@click.command("init", epilog=examples("modelcat init", "modelcat init ml-catalog"))
@click.argument("folder", default=".", type=click.Path(file_okay=False, path_type=Path))
@command
def init(folder: Path, fmt: str) -> int:
    """Scaffold a catalog repository in FOLDER (default: here).

    Writes models.yaml (unless one exists: a skeleton with the schema modeline, one example model
    whose small ONNX artifact goes under artifacts/, and one application), its JSON Schema,
    policies/ (the built-in rules, fixtures, settings, an empty waivers file), a GitHub Actions
    workflow and a GitLab CI file (review on pull requests, apply on merge) and CODEOWNERS from the
    models' owners. Files that exist are kept as they are. An existing models.yaml must be valid.
    """
    from catalog.scaffold import builtin_policies, example_model, plan_files, skeleton, write_files
    from catalog.schema import render_schema
    from catalog.validate import validate_file, validate_text

    existing = folder / "models.yaml"
    extra: dict[str, bytes] = {}
    if existing.exists():
        catalog = validate_file(existing).raise_for_errors()  # CODEOWNERS comes from it
        text = existing.read_text(encoding="utf-8")
    else:
        artifact = example_model()
        text = skeleton(artifact, datetime.now(UTC).date())
        catalog = validate_text(text, str(existing)).raise_for_errors()
        version = catalog.models[0].versions[0]
        extra[version.artifact.uri] = artifact
    files = plan_files(catalog, text, builtin_policies(), render_schema()) | extra
    result = write_files(folder, files)
    if fmt == "json":
        click.echo(
            json.dumps(
                {**verdict(None), "folder": str(folder), "written": result.written, "kept": result.kept}, indent=2
            )
        )
        return 0
    for name in result.written:
        click.echo(f"wrote {folder / name}")
    if result.kept:
        click.echo(f"kept {plural(len(result.kept), 'existing file')}: {', '.join(result.kept)}")
    click.echo(
        f"next: edit {folder / 'models.yaml'}, `modelcat validate`, commit, and set the CI variables named in "
        ".github/workflows/modelcat.yml (or .gitlab-ci.yml)"
    )
    return 0
