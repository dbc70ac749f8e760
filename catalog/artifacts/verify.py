"""Prove that every artifact the catalog names exists with its digest, size and signature."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from catalog.artifacts.onnx_facts import inspect_onnx
from catalog.artifacts.repository import store_for_uri
from catalog.domain.contract import signature_changes
from catalog.domain.models import Catalog, Model, Version
from catalog.errors import ArtifactError, StoreUnreachable

__all__ = ["VerifyResult", "select_versions", "verify_versions"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    model: str
    version: str
    uri: str
    digest: str
    size: int
    ok: bool
    message: str
    seconds: float


def select_versions(
    catalog: Catalog, *, model: str | None = None, only: set[tuple[str, str]] | None = None
) -> list[tuple[Model, Version]]:
    """The versions to verify: all, one model's, or the (model, version) pairs in ``only``."""
    return [
        (m, v)
        for m in catalog.models
        if model is None or m.name == model
        for v in m.versions
        if only is None or (m.name, v.version) in only
    ]


def _verify_one(catalog: Catalog, model: Model, version: Version, base: Path) -> str:
    artifact = version.artifact
    limit = model.max_artifact_bytes or catalog.limits.max_artifact_bytes
    if artifact.size_bytes > limit:
        return f"size_bytes {artifact.size_bytes:,} is over the limit of {limit:,}"
    fetched = store_for_uri(artifact.uri, base).fetch(artifact.uri, artifact.digest, artifact.size_bytes, limit)
    facts = inspect_onnx(fetched.main)
    differences = signature_changes(version.signature, facts.signature)
    if differences:
        return "the artifact's signature differs from the catalog's: " + "; ".join(c.text for c in differences)
    return ""


def verify_versions(
    catalog: Catalog,
    versions: Iterable[tuple[Model, Version]],
    base: Path,
    on_result: Callable[[VerifyResult], None] | None = None,
) -> list[VerifyResult]:
    """Fetch (or read) each artifact, check digest, size, ONNX validity and signature.

    A store that cannot be reached stops the verification (StoreUnreachable): that is the
    environment's failure, not the artifact's."""
    results = []
    for model, version in versions:
        start = time.perf_counter()
        try:
            problem = _verify_one(catalog, model, version, base)
        except StoreUnreachable:
            raise
        except ArtifactError as e:
            problem = str(e).removeprefix(f"{e.path}: ")
        result = VerifyResult(
            model=model.name,
            version=version.version,
            uri=version.artifact.uri,
            digest=version.artifact.digest,
            size=version.artifact.size_bytes,
            ok=not problem,
            message=problem or "ok",
            seconds=time.perf_counter() - start,
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
