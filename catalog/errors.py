"""The one error tree of modelcat.

ModelcatError                  root; ``exit_code`` tells the CLI what to return
├── CatalogInvalid             models.yaml has problems (a list of Problem, all of them) → 1
├── CatalogNotFound            the catalog file does not exist or cannot be read         → 2
├── EditRefused                an edit would break the catalog or names nothing          → 1
├── ArtifactError              an artifact is unusable                                   → 1
│   ├── NotOnnx                the bytes are not an ONNX model (judged by content)
│   ├── UnsafeArtifact         external data escaping the artifact, symlinks, hard links
│   ├── ArtifactTooLarge       over the global or per-model size limit
│   ├── DigestMismatch         the bytes are not the ones the catalog names
│   └── StoreError             the artifact repository failed, refused or is unreachable
└── UsageError                 a command was called with arguments that make no sense    → 2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalog.domain.problems import Problem

__all__ = [
    "ArtifactError",
    "ArtifactTooLarge",
    "CatalogInvalid",
    "CatalogNotFound",
    "EditRefused",
    "DigestMismatch",
    "ModelcatError",
    "NotOnnx",
    "StoreError",
    "UnsafeArtifact",
    "UsageError",
]


class ModelcatError(Exception):
    """Root of every error modelcat raises on purpose."""

    exit_code = 1
    template = "{detail}"

    def __init__(self, detail: str = "", **fields: object) -> None:
        self.detail = detail
        self.fields = fields
        super().__init__(self.template.format(detail=detail, **fields))


class CatalogInvalid(ModelcatError):
    """The catalog has one or more problems; ``problems`` holds every one found."""

    template = "{path}: {count} problem(s) found"

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(path=path, count=len(self.problems))


class CatalogNotFound(ModelcatError):
    exit_code = 2
    template = "cannot read catalog {path}: {detail}"

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(detail, path=path)


class EditRefused(ModelcatError):
    """An edit was not written; the file on disk is unchanged."""

    template = "not written: {detail}"

    def __init__(self, detail: str, problems: Sequence[Problem] = (), path: str = "") -> None:
        self.problems = list(problems)
        self.path = path
        super().__init__(detail)


class UsageError(ModelcatError):
    exit_code = 2


class ArtifactError(ModelcatError):
    """An artifact cannot be used; ``path`` is the file or URI it is about."""

    template = "{path}: {detail}"

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(detail, path=path)


class NotOnnx(ArtifactError):
    pass


class UnsafeArtifact(ArtifactError):
    pass


class ArtifactTooLarge(ArtifactError):
    pass


class DigestMismatch(ArtifactError):
    template = "{path}: digest mismatch: expected {expected}, got {actual}{detail}"

    def __init__(self, path: str, expected: str, actual: str, detail: str = "") -> None:
        self.expected, self.actual = expected, actual
        self.path = path
        ModelcatError.__init__(self, detail, path=path, expected=expected, actual=actual)


class StoreError(ArtifactError):
    pass
