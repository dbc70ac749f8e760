"""Register a model version: hash, inspect, contract-check, upload, then append it to models.yaml
(to its model's versions, or as a new model when an owner and a task are given for a new name)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import ValidationError

from catalog.artifacts.hashing import Progress
from catalog.artifacts.repository import open_store
from catalog.artifacts.staging import stage_artifact
from catalog.domain.contract import SignatureChange, contract_changes
from catalog.domain.effective import semver_key
from catalog.domain.models import Catalog, Model, Signature, Version
from catalog.domain.problems import Problem
from catalog.editing import append_entry, locked_catalog
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
    new_model: bool = False  # the model was added to the catalog with this version


# Plain scalars YAML reads as something other than a string (null, booleans, special floats).
_NOT_STRINGS = re.compile(r"(?i)(null|true|false|yes|no|on|off|y|n|\.inf|\.nan|\.[0-9].*)")


def _scalar(value: str) -> str:
    """A string as a YAML flow scalar: plain when safe, else JSON-quoted (valid YAML)."""
    plain = value
    for char in "-_./:@":
        plain = plain.replace(char, "")
    safe = (
        plain.isalnum()
        and value[0] not in "-:@"
        and not value[0].isdigit()
        and ": " not in value
        and not _NOT_STRINGS.fullmatch(value)
    )
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


def _model_yaml(fields: Mapping[str, str], version: Version) -> str:
    """A new model's block: name, owner, task and its first version."""
    first, *rest = _version_yaml(version).splitlines()
    lines = [f"{key}: {_scalar(value)}" for key, value in fields.items()]
    return "\n".join([*lines, "versions:", f"  - {first}", *(f"    {line}" for line in rest)]) + "\n"


def _new_model_fields(
    catalog: Catalog, catalog_path: Path, model: str, entry: Model | None, owner: str | None, task: str | None
) -> dict[str, str] | None:
    """The name, owner and task of ``model`` if it is new (``entry`` None; checked before any byte is
    read); None when it exists, with the ``owner`` and ``task`` given (if any) agreeing with its own."""
    where = str(catalog_path)
    if entry is not None:
        for name, given in (("owner", owner), ("task", task)):
            if given is not None and given != getattr(entry, name):
                raise EditRefused(
                    f"{model}'s {name} is {getattr(entry, name)}, not {given}; leave --{name} out to add a version",
                    path=where,
                )
        return None
    if owner is None and task is None:
        known = ", ".join(m.name for m in catalog.models)
        raise EditRefused(
            f"no model {model!r} in {catalog_path} (models: {known}); to add it as a new model, give --owner and --task",
            path=where,
        )
    if owner is None or task is None:
        missing = "--owner" if owner is None else "--task"
        raise EditRefused(
            f"no model {model!r} in {catalog_path}: to add it as a new model, give {missing} too", path=where
        )
    fields = {"name": model, "owner": owner, "task": task}
    try:
        Model.model_validate({**fields, "versions": []})
    except ValidationError as e:
        for error in e.errors():
            field = str(error["loc"][0])
            if field != "versions":
                text = "is not a DNS label (lowercase letters, digits, '-')" if field == "name" else error["msg"]
                raise EditRefused(f"new model {field} {fields[field]!r}: {text}", path=where) from None
    return fields


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
    owner: str | None = None,
    task: str | None = None,
) -> Registered:
    """Everything is checked before the upload, and the catalog is written last (atomically).

    A ``model`` the catalog does not have yet is added, with ``owner`` and ``task`` (both needed);
    for an existing one they may be given only with the values it has.
    """
    catalog = _valid_catalog(catalog_path, read_catalog_bytes(catalog_path))
    entry = next((m for m in catalog.models if m.name == model), None)
    new_model = _new_model_fields(catalog, catalog_path, model, entry, owner, task)
    _refuse_duplicates(catalog, model, version, None)
    limit = (entry and entry.max_artifact_bytes) or catalog.limits.max_artifact_bytes
    target = open_store(store, catalog_path.parent, catalog)
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
        artifact_fields: dict[str, object] = {"uri": "pending", "digest": staged.digest, "size_bytes": staged.size}
        fields = {
            "version": version,
            "artifact": artifact_fields,
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
    artifact_fields["uri"] = uri
    changes = _append_version(catalog_path, model, Version.model_validate(fields), new_model)
    notes = tuple(c for c in changes if c.kind != "breaking")
    return Registered(model, version, uri, staged.digest, staged.size, notes, new_model=new_model is not None)


def _append_version(
    catalog_path: Path, model: str, version: Version, new_model: Mapping[str, str] | None
) -> list[SignatureChange]:
    """Append the version (as a new model's first when ``new_model`` holds its fields) under the
    catalog's lock, checked again against the catalog as it is now: another writer may have changed
    it while the artifact was hashed and stored."""
    with locked_catalog(catalog_path) as locked:
        catalog = _valid_catalog(catalog_path, locked.original)
        exists = any(m.name == model for m in catalog.models)
        if new_model is None and not exists:
            raise EditRefused(f"{model!r} was removed from {catalog_path} while registering", path=str(catalog_path))
        if new_model is not None and exists:
            raise EditRefused(
                f"{model!r} was added to {catalog_path} while registering; run the command again",
                path=str(catalog_path),
            )
        _refuse_duplicates(catalog, model, version.version, None)
        _refuse_duplicates(catalog, model, version.version, version.artifact.digest)
        changes = _checked_contract(catalog, catalog_path, model, version.version, version.signature)
        text, _ = decode(locked.original, str(catalog_path))
        edit = RoundTrip(text, str(catalog_path))
        if new_model is not None:
            append_entry(edit.document["models"], edit.load_fragment(_model_yaml(new_model, version)))
        else:
            entry = next(m for m in edit.document["models"] if m.get("name") == model)
            append_entry(entry["versions"], edit.load_fragment(_version_yaml(version)))
        new_text = edit.dump().encode("utf-8")
        report = validate_bytes(new_text, str(catalog_path))
        if report.errors:
            raise EditRefused(f"the new version would leave {catalog_path} invalid", report.errors, str(catalog_path))
        locked.write(new_text)
    return changes
