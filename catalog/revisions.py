"""The catalog at a git revision, and what a change since a revision touches.

Every command that compares revisions reads them here: ``diff BASE [HEAD]``, ``review BASE``,
``policy check --base REF`` and ``verify --changed-since REF``.

- ``load_revision(path, revision)``: the catalog file at a git revision (None: the working tree's
  file), validated, as a ``Revision``: the catalog (None when absent or invalid), every problem
  named ``models.yaml@REV:line``, whether the file was there. Given ``like`` (a valid revision of
  the same file, e.g. the head), the models written alike on both sides are taken from it instead
  of being parsed again (``validate_bytes_reusing``).
- ``change_since(head, base)``: the base revision, the domain diff, and the versions whose artifact
  the change must verify (``CatalogDiff.touched_versions``). ``review`` and ``verify
  --changed-since`` both ask it, so they verify the same versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalog.domain.diff import CatalogDiff, diff_catalogs
from catalog.domain.models import Catalog
from catalog.domain.problems import Problem
from catalog.errors import CatalogInvalid, UsageError
from catalog.gitio import file_at_revision
from catalog.validate import read_catalog_bytes, validate_bytes, validate_bytes_reusing
from catalog.yamlio.loader import decode, parse

__all__ = ["Change", "Revision", "change_since", "check_revision", "load_revision"]


@dataclass(frozen=True)
class Revision:
    """The catalog file at one revision. ``catalog`` is None when the file is absent or invalid."""

    path: Path  # the catalog file in the working tree
    revision: str | None  # None: the working tree's file
    present: bool
    text: str | None  # the decoded text; None when absent or not UTF-8
    catalog: Catalog | None
    problems: tuple[Problem, ...] = ()

    @property
    def source(self) -> str:
        """The file as problems name it: ``models.yaml@HEAD~1``, or the path in the working tree."""
        return f"{self.path}@{self.revision}" if self.revision is not None else str(self.path)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def valid(self) -> Catalog:
        """The catalog, or CatalogInvalid naming every error."""
        if self.catalog is None or self.errors:
            raise CatalogInvalid(self.source, self.errors)
        return self.catalog

    def document(self) -> object | None:
        """The file's YAML data, read leniently (whatever the schema says); None when the file is
        absent or is not YAML."""
        if self.text is None:
            return None
        return parse(self.text, self.source).data


def check_revision(revision: str) -> None:
    """A revision that is blank or looks like an option is a usage error (exit 2)."""
    if not revision.strip() or revision.startswith("-"):
        raise UsageError(f"{revision!r} is not a revision")


def load_revision(path: Path, revision: str | None = None, *, like: Revision | None = None) -> Revision:
    """The catalog at ``revision`` (None: the file in the working tree), validated.

    A revision without the file is ``present=False`` with no catalog; a revision git does not know
    is a UsageError (exit 2). ``like``: a valid revision of the same file whose models may be reused.
    """
    if revision is None:
        data: bytes | None = read_catalog_bytes(path)
    else:
        check_revision(revision)
        data = file_at_revision(path, revision)
    if data is None:
        return Revision(path, revision, False, None, None)
    source = f"{path}@{revision}" if revision is not None else str(path)
    if like is not None and like.catalog is not None and like.text is not None and not like.errors:
        report = validate_bytes_reusing(data, source, like.text, like.catalog)
    else:
        report = validate_bytes(data, source)
    text, undecodable = decode(data, source)
    return Revision(path, revision, True, None if undecodable else text, report.catalog, tuple(report.problems))


@dataclass(frozen=True)
class Change:
    """What the working tree's catalog changes since a base revision."""

    base: Revision
    diff: CatalogDiff
    touched: frozenset[tuple[str, str]]  # (model, version) whose artifact must be verified


def change_since(head: Revision, base: str) -> Change:
    """The change from ``base`` (a git revision) to ``head`` (a valid catalog, normally the working
    tree's). A base without the file, or an invalid one, is an empty catalog: every version is new."""
    catalog = head.valid()
    before = load_revision(head.path, base, like=head)
    diff = diff_catalogs(before.catalog, catalog)
    return Change(before, diff, diff.touched_versions())
