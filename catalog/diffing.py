"""``modelcat diff BASE [HEAD]``: what a change to models.yaml does, in model terms, with its blast radius.

Both sides are read from git (``catalog.revisions``; a side without the file is an empty catalog,
an invalid side stops the diff), compared in model terms (``catalog.domain.diff``), and, unless
left out, synthesized without the CDK app (``catalog.synth.resources``) to tell per stack what an
apply would create, update, replace or delete (``catalog.synth.blast``). The outcome
(``DiffOutcome``) carries everything the renderings need; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.domain.deployment import environments
from catalog.domain.diff import CatalogDiff, diff_catalogs
from catalog.domain.models import Catalog
from catalog.errors import CatalogInvalid, UsageError
from catalog.nogc import no_gc
from catalog.revisions import Revision, check_revision, load_revision
from catalog.synth.blast import BlastRadius, blast_radius
from catalog.synth.resources import synthesize_resources

__all__ = ["DiffOutcome", "Side", "diff_revisions"]


@dataclass(frozen=True, slots=True)
class Side:
    """One side of the diff: a git revision (None: the working tree file) and whether the file is there."""

    file: str
    revision: str | None
    present: bool

    @property
    def label(self) -> str:
        return self.revision if self.revision is not None else "working tree"

    @property
    def source(self) -> str:
        """The file as problems name it: ``models.yaml@HEAD~1``, or just the path in the working tree."""
        return f"{self.file}@{self.revision}" if self.revision is not None else self.file

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "revision": self.revision, "present": self.present}


@dataclass(frozen=True, slots=True)
class DiffOutcome:
    base: Side
    head: Side
    diff: CatalogDiff
    blast: BlastRadius | None  # None: not asked for, or not computable (see notes)
    notes: list[str] = field(default_factory=list)


def _side(revision: Revision) -> Side:
    return Side(file=str(revision.path), revision=revision.revision, present=revision.present)


def diff_revisions(
    path: Path, base: str, head: str | None = None, *, blast: bool = True, target: str | None = None
) -> DiffOutcome:
    """What ``head`` (None: the working tree's file) changes in the catalog ``path`` relative to
    ``base``, two git revisions; with ``blast``, the resources an apply would change, each
    environment deployed to ``target`` when given, else to its own. CatalogInvalid when a side is
    invalid (every problem of both), UsageError when ``base`` is not a revision."""
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
        radius = None
        if blast:
            radius = _blast(path, (base_side, head_side), base_catalog, head_catalog, target, notes)
    return DiffOutcome(base_side, head_side, changes, radius, notes)


def _blast(
    path: Path,
    sides: tuple[Side, Side],
    base: Catalog | None,
    head: Catalog | None,
    target: str | None,
    notes: list[str],
) -> BlastRadius | None:
    """The blast radius, or None with a note when a side cannot be synthesized (a target missing here)."""
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
