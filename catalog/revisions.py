"""The catalog at a git revision, and what a change since a revision touches.

Every command that compares revisions reads them here: ``diff BASE [HEAD]``, ``review BASE``,
``policy check --base REF`` and ``verify --changed-since REF``.

- ``load_revision(path, revision)``: the catalog file at a git revision (None: the working tree's
  file), validated, as a ``Revision``: the catalog (None when absent or invalid), every problem
  named ``models.yaml@REV:line``, whether the file was there. Given ``like`` (a valid revision of
  the same file, e.g. the head), the models written alike on both sides are taken from it instead
  of being parsed again (``validate_bytes_reusing``).
- ``change_since(head, base)``: the base revision, the domain diff, and the versions whose artifact
  the change must verify: those the diff touches (``CatalogDiff.touched_versions``) and those whose
  artifact files differ in git (a blob changed in place). ``review`` and ``verify --changed-since``
  both ask it, so they verify the same versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catalog.artifacts.locations import artifact_path, store_folder
from catalog.domain.diff import CatalogDiff, diff_catalogs
from catalog.domain.models import Catalog
from catalog.domain.problems import Problem
from catalog.domain.stores import catalog_stores
from catalog.errors import CatalogInvalid, UsageError
from catalog.gitio import file_at_revision, files_changed_since
from catalog.validate import read_catalog_bytes, validate_bytes, validate_bytes_reusing
from catalog.yamlio.loader import decode, parse

__all__ = [
    "Change",
    "Revision",
    "change_since",
    "changed_artifact_files",
    "check_revision",
    "load_revision",
    "proposed_revision",
]


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
    return _revision(path, revision, data, like)


def proposed_revision(path: Path, data: bytes, *, like: Revision | None = None) -> Revision:
    """The catalog ``path`` would be with ``data`` (an edit not written yet), validated, as the
    working tree's revision: what ``rollback`` reviews before it commits."""
    return _revision(path, None, data, like)


def _revision(path: Path, revision: str | None, data: bytes, like: Revision | None) -> Revision:
    source = f"{path}@{revision}" if revision is not None else str(path)
    if like is not None and like.catalog is not None and like.text is not None and not like.errors:
        report = validate_bytes_reusing(data, source, like.text, like.catalog)
    else:
        # the working tree's catalog reads the files it names beside it (the trust policy's public keys)
        report = validate_bytes(data, source, folder=path.parent if revision is None else None)
    text, undecodable = decode(data, source)
    return Revision(path, revision, True, None if undecodable else text, report.catalog, tuple(report.problems))


@dataclass(frozen=True)
class Change:
    """What the working tree's catalog changes since a base revision."""

    base: Revision
    diff: CatalogDiff
    touched: frozenset[tuple[str, str]]  # (model, version) whose artifact must be verified
    files: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # touched by their files
    unnamed: tuple[str, ...] = ()  # changed files in a store's sha256/ that no version names

    def notes(self) -> list[str]:
        """What a reviewer is told besides the diff: versions verified for their files alone, and
        changed store files that no version names (nothing serves them, so nothing verifies them)."""
        named = self.diff.touched_versions()
        out = [
            f"{model} {version}: its artifact's files differ from {self.base.revision} "
            f"({', '.join(paths)}) while models.yaml names the same bytes, so they are checked again"
            for (model, version), paths in sorted(self.files.items())
            if (model, version) not in named
        ]
        if self.unnamed:
            out.append(
                "store files that no version names changed (not verified, nothing serves them): "
                + ", ".join(self.unnamed)
            )
        return out


def change_since(head: Revision, base: str) -> Change:
    """The change from ``base`` (a git revision) to ``head`` (a valid catalog, the working tree's).

    A base without the file, or an invalid one, is an empty catalog: every version is new. The
    versions to verify are those the domain diff touches (added, other bytes, other signature) and
    those whose artifact files differ between ``base`` and the working tree (``git diff``), so that
    a blob changed in place, with models.yaml left alone, is verified too.
    """
    catalog = head.valid()
    before = load_revision(head.path, base, like=head)
    diff = diff_catalogs(before.catalog, catalog)
    files, unnamed = changed_artifact_files(head.path, catalog, base)
    return Change(before, diff, diff.touched_versions() | files.keys(), files, unnamed)


def changed_artifact_files(
    path: Path, catalog: Catalog, base: str
) -> tuple[dict[tuple[str, str], tuple[str, ...]], tuple[str, ...]]:
    """The versions whose artifact (a file, or a folder's files) or signature bundle differs in git
    between ``base`` and the working tree, with those files; and the changed files under a folder store's ``sha256/``
    that no version names, each with how it changed. Paths are shown relative to the catalog."""
    folder = path.resolve().parent
    changed = files_changed_since(folder, base)
    changed.pop(path.resolve(), None)
    if not changed:
        return {}, ()
    owners: dict[Path, tuple[str, str]] = {}
    for model in catalog.models:
        for version in model.versions:
            bundle = version.artifact.bundle  # its signature's file is the version's too
            for uri in (version.artifact.uri, *([bundle.uri] if bundle is not None else [])):
                where = artifact_path(uri, folder)
                if where is not None:
                    owners[where] = (model.name, version.version)
    roots = [root / "sha256" for store in catalog_stores(catalog) if (root := store_folder(store, folder))]
    files: dict[tuple[str, str], list[str]] = {}
    unnamed: list[str] = []
    for changed_path, how in sorted(changed.items()):
        owner = next((owners[p] for p in (changed_path, *changed_path.parents) if p in owners), None)
        shown = _shown(changed_path, folder)
        if owner is not None:
            files.setdefault(owner, []).append(shown)
        elif any(changed_path.is_relative_to(root) for root in roots):
            unnamed.append(f"{shown} ({how})")
    return {owner: tuple(paths) for owner, paths in files.items()}, tuple(unnamed)


def _shown(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)
