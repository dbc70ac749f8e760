"""Register a model version: hash, inspect, contract-check, upload, then append it to models.yaml."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import ValidationError

from catalog.artifacts.hashing import Progress
from catalog.artifacts.repository import open_store
from catalog.artifacts.staging import stage_artifact
from catalog.domain.contract import SignatureChange, contract_changes
from catalog.domain.models import Catalog, Signature, Version
from catalog.domain.problems import Problem
from catalog.domain.rules import semver_key
from catalog.editing import locked_catalog
from catalog.errors import ArtifactTooLarge, EditRefused
from catalog.validate import read_catalog_bytes, validate_bytes
from catalog.yamlio.loader import decode
from catalog.yamlio.roundtrip import RoundTrip

__all__ = ["Registered", "register_version"]


@dataclass(frozen=True)
class Registered:
    model: str
    version: str
    uri: str
    digest: str
    size: int
    notes: tuple[SignatureChange, ...]  # additive signature changes against routed versions


def _scalar(value: str) -> str:
    """A string as a YAML flow scalar: plain when safe, else JSON-quoted (valid YAML)."""
    plain = value
    for char in "-_./:@":
        plain = plain.replace(char, "")
    safe = plain.isalnum() and value[0] not in "-:@" and not value[0].isdigit() and ": " not in value
    return value if safe else json.dumps(value)


def _tensor_lines(signature: Signature, side: str) -> list[str]:
    lines = [f"  {side}:"]
    for spec in getattr(signature, side):
        shape = ", ".join(str(d) if isinstance(d, int) else _scalar(d) for d in spec.shape)
        lines.append(f"    - {{name: {_scalar(spec.name)}, dtype: {spec.dtype}, shape: [{shape}]}}")
    return lines


def _version_yaml(version: Version) -> str:
    """The version block in the demo catalog's style (flow style for tensors, metrics, labels)."""
    lines = [
        f"version: {version.version}",
        "artifact:",
        f"  uri: {_scalar(version.artifact.uri)}",
        f"  digest: {version.artifact.digest}",
        f"  size_bytes: {version.artifact.size_bytes}",
        "signature:",
        *_tensor_lines(version.signature, "inputs"),
        *_tensor_lines(version.signature, "outputs"),
    ]
    if version.metrics:
        lines.append("metrics: {" + ", ".join(f"{k}: {v!r}" for k, v in version.metrics.items()) + "}")
    trained = version.trained_at
    lines.append(f"trained_at: {trained.date() if trained.time() == datetime.min.time() else trained.isoformat()}")
    lines.append(f"registered_at: {version.registered_at.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    lines.append(f"stage: {version.stage}")
    if version.labels:
        lines.append("labels: {" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in version.labels.items()) + "}")
    return "\n".join(lines) + "\n"


def _valid_catalog(catalog_path: Path, data: bytes) -> Catalog:
    report = validate_bytes(data, str(catalog_path))
    if report.errors or report.catalog is None:
        raise EditRefused(f"{catalog_path} has errors; fix them first", report.errors, str(catalog_path))
    return report.catalog


def _refuse_duplicates(catalog: Catalog, model: str, version: str, digest: str | None) -> None:
    for m in catalog.models:
        for v in m.versions:
            if digest is None and m.name == model and semver_key(v.version) == semver_key(version):
                raise EditRefused(f"{model} already has version {v.version}; pick a new version number")
            if digest is not None and v.artifact.digest == digest:
                raise EditRefused(f"these bytes are already registered as {m.name} {v.version} ({digest})")


def _contract_problems(changes: list[SignatureChange]) -> list[Problem]:
    return [
        Problem(
            "contract.breaking",
            f"application {c.application!r} routes {c.against}: {c.text}",
            hint="keep the signature, or register it as a new model and bind it separately",
        )
        for c in changes
        if c.kind == "breaking"
    ]


def _checked_contract(
    catalog: Catalog, catalog_path: Path, model: str, version: str, signature: Signature
) -> list[SignatureChange]:
    """The signature changes against every routed version; refused when one breaks a caller."""
    changes = contract_changes(catalog, model, signature)
    breaking = _contract_problems(changes)
    if breaking:
        raise EditRefused(f"{model} {version} would break its callers", breaking, str(catalog_path))
    return changes


def register_version(
    catalog_path: Path,
    model: str,
    version: str,
    artifact: Path,
    *,
    metrics: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
    trained_at: datetime | date | str | None = None,
    stage: str = "candidate",
    store: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> Registered:
    """Everything is checked before the upload, and the catalog is written last (atomically)."""
    catalog = _valid_catalog(catalog_path, read_catalog_bytes(catalog_path))
    entry = next((m for m in catalog.models if m.name == model), None)
    if entry is None:
        known = ", ".join(m.name for m in catalog.models)
        raise EditRefused(f"no model {model!r} in {catalog_path} (models: {known})", path=str(catalog_path))
    _refuse_duplicates(catalog, model, version, None)
    limit = entry.max_artifact_bytes or catalog.limits.max_artifact_bytes
    target = open_store(store, catalog_path.parent)
    staging = target.staging_dir()
    try:
        staged = stage_artifact(artifact, staging, limit=limit, progress=progress)
        minimum = catalog.limits.min_artifact_bytes
        if minimum is not None and staged.size < minimum:
            raise ArtifactTooLarge(str(artifact), f"is {staged.size:,} bytes, under the minimum of {minimum:,}")
        _refuse_duplicates(catalog, model, version, staged.digest)
        _checked_contract(catalog, catalog_path, model, version, staged.facts.signature)
        moment = now or datetime.now(UTC)
        if trained_at is None:
            trained_at = datetime.fromtimestamp(artifact.stat().st_mtime, UTC).date()
        fields = {
            "version": version,
            "artifact": {"uri": "pending", "digest": staged.digest, "size_bytes": staged.size},
            "signature": staged.facts.signature.model_dump(),
            "metrics": dict(metrics or {}),
            "trained_at": trained_at,
            "registered_at": moment.replace(microsecond=0),
            "stage": stage,
            "labels": dict(labels or {}),
        }
        try:
            Version.model_validate(fields)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise EditRefused(f"version {version}: {where}: {first['msg']}", path=str(catalog_path)) from None
        uri = target.put(staged)
    finally:
        target.release_staging(staging)
    fields["artifact"]["uri"] = uri  # type: ignore[index]
    changes = _append_version(catalog_path, model, Version.model_validate(fields))
    return Registered(
        model, version, uri, staged.digest, staged.size, tuple(c for c in changes if c.kind != "breaking")
    )


def _append_version(catalog_path: Path, model: str, version: Version) -> list[SignatureChange]:
    """Append under the catalog's lock, checked again against the catalog as it is now: another
    writer may have changed it while the artifact was hashed and stored."""
    with locked_catalog(catalog_path) as locked:
        catalog = _valid_catalog(catalog_path, locked.original)
        if not any(m.name == model for m in catalog.models):
            raise EditRefused(f"{model!r} was removed from {catalog_path} while registering", path=str(catalog_path))
        _refuse_duplicates(catalog, model, version.version, None)
        _refuse_duplicates(catalog, model, version.version, version.artifact.digest)
        changes = _checked_contract(catalog, catalog_path, model, version.version, version.signature)
        text, _ = decode(locked.original, str(catalog_path))
        edit = RoundTrip(text, str(catalog_path))
        entry = next(m for m in edit.document["models"] if m.get("name") == model)
        entry["versions"].append(edit.load_fragment(_version_yaml(version)))
        new_text = edit.dump().encode("utf-8")
        report = validate_bytes(new_text, str(catalog_path))
        if report.errors:
            raise EditRefused(f"the new version would leave {catalog_path} invalid", report.errors, str(catalog_path))
        locked.write(new_text)
    return changes
