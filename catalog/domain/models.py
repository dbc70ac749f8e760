"""The catalog's typed shape: pydantic v2, strict, unknown fields forbidden. No IO here.

The JSON Schema in ``schemas/catalog.schema.json`` is generated from these classes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, WithJsonSchema

__all__ = [
    "API_VERSION",
    "STAGES",
    "Application",
    "Artifact",
    "Binding",
    "Catalog",
    "DType",
    "Defaults",
    "Gates",
    "Limits",
    "Model",
    "Resources",
    "Route",
    "Serving",
    "Signature",
    "Stage",
    "Task",
    "TensorSpec",
    "Version",
]

API_VERSION = "modelcat/v1"
GIB = 1 << 30

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
SEMVER = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"
)
DIGEST = r"^sha256:[0-9a-f]{64}$"
METRIC_NAME = r"^[a-z][a-z0-9_@.-]{0,62}$"
LABEL_KEY = r"^[a-z0-9]([-a-z0-9_./]{0,61}[a-z0-9])?$"
HEADER_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
DIM_NAME = r"^([A-Za-z_][A-Za-z0-9_.-]{0,62}|[?])$"  # "?": a dimension the model leaves unnamed
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _instant(value: Any) -> Any:
    """Accept an RFC 3339 timestamp with a zone or a plain date (midnight UTC); nothing else."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    if not isinstance(value, str):
        raise ValueError("expected a date (2026-03-01) or an RFC 3339 timestamp with a zone")  # noqa: TRY004 -- pydantic turns only ValueError into a field error
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (2026-03-01) or an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add 'Z' for UTC")
    return parsed


Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}),
]
Name = Annotated[str, Field(pattern=DNS_LABEL, description="DNS label: lowercase letters, digits, '-'")]
Labels = dict[Annotated[str, Field(pattern=LABEL_KEY)], Annotated[str, Field(max_length=253)]]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=False)


Stage = Literal["candidate", "production", "deprecated", "retired"]
STAGES: tuple[str, ...] = ("candidate", "production", "deprecated", "retired")
Task = Literal[
    "classification",
    "regression",
    "ranking",
    "recommendation",
    "embedding",
    "detection",
    "forecasting",
    "other",
]
# ONNX tensor element types, by their numpy-style names.
DType = Literal[
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "string",
]


_DIM_NAME = re.compile(DIM_NAME)


def _dim(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIM_NAME.match(value):
        return value
    raise ValueError("a dimension is a size (an integer >= 0) or a name such as batch")


Dim = Annotated[
    int | str,
    PlainValidator(_dim),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": DIM_NAME}]}),
]


class TensorSpec(Strict):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    dtype: DType
    shape: list[Dim] = Field(description="Fixed sizes as integers, symbolic dims (e.g. batch) as names")


class Signature(Strict):
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)


class Artifact(Strict):
    uri: Annotated[str, Field(min_length=1, max_length=2048)] = Field(
        description="Where the bytes live: a path relative to the catalog, file:///abs/path, "
        "or oci://host/repo@sha256:<manifest digest>. Never a mutable tag."
    )
    digest: Annotated[str, Field(pattern=DIGEST)] = Field(
        description="sha256 of the artifact's bytes: 'sha256:' and 64 lowercase hex digits"
    )
    size_bytes: Annotated[int, Field(gt=0)]


class Version(Strict):
    version: Annotated[str, Field(pattern=SEMVER, description="Semantic version, e.g. 1.4.0")]
    artifact: Artifact
    signature: Signature
    metrics: dict[Annotated[str, Field(pattern=METRIC_NAME)], float] = {}
    trained_at: Instant
    registered_at: Instant
    stage: Stage = "candidate"
    labels: Labels = {}


class Model(Strict):
    name: Name
    owner: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(max_length=4096)] = ""
    task: Task
    format: Literal["onnx"] = "onnx"
    max_artifact_bytes: Annotated[int, Field(gt=0)] | None = None
    labels: Labels = {}
    versions: list[Version] = Field(min_length=1)


class Resources(Strict):
    cpu: Annotated[str, Field(pattern=QUANTITY)] | None = None
    memory: Annotated[str, Field(pattern=QUANTITY)] | None = None


class Serving(Strict):
    """How many replicas serve each routed version; unset fields come from ``defaults.serving``."""

    replicas: Annotated[int, Field(ge=0, le=1000)] | None = None
    min_replicas: Annotated[int, Field(ge=0, le=1000)] | None = None
    max_replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    target_concurrency: Annotated[int, Field(ge=1, le=100_000)] | None = None
    resources: Resources | None = None


class Gates(Strict):
    """What a routed version must meet: maximum age and minimum metric values."""

    max_age_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        None, description="Oldest allowed training date, in days"
    )
    min_metrics: dict[Annotated[str, Field(pattern=METRIC_NAME)], float] = {}


class Route(Strict):
    version: Annotated[str, Field(pattern=SEMVER)]
    weight: Annotated[int, Field(ge=0, le=100)] = Field(
        description="Integer percent of traffic; a binding's weights sum to 100"
    )


class Binding(Strict):
    model: Annotated[str, Field(min_length=1)]
    enabled: bool = Field(True, description="false keeps the binding declared but routes nothing")
    routes: list[Route] = Field(min_length=1)
    sticky_key: Annotated[str, Field(pattern=HEADER_NAME)] | None = Field(
        None, description="Request header whose value pins a user to one version"
    )
    serving: Serving = Serving()
    gates: Gates | None = None


class Application(Strict):
    name: Name
    owner: Annotated[str, Field(min_length=1, max_length=256)]
    environment: Name
    description: Annotated[str, Field(max_length=4096)] = ""
    bindings: list[Binding] = Field(min_length=1)


class Defaults(Strict):
    serving: Serving = Serving()
    gates: Gates | None = None


class Limits(Strict):
    max_artifact_bytes: Annotated[int, Field(gt=0)] = 2 * GIB
    min_artifact_bytes: Annotated[int, Field(gt=0)] | None = None


class Catalog(Strict):
    api_version: Literal["modelcat/v1"] = Field(alias="apiVersion")
    defaults: Defaults = Defaults()
    limits: Limits = Limits()
    models: list[Model] = Field(min_length=1)
    applications: list[Application] = []
