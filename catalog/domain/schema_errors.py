"""Turn pydantic's validation errors into problems a catalog author can act on."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from catalog.domain.models import Catalog
from catalog.domain.problems import Loc, Problem
from catalog.wording import did_you_mean

__all__ = ["SourceText", "schema_problem"]

# (source text as written, was it quoted) for a path, when the YAML has it
SourceText = Callable[[Loc], tuple[str | None, bool]]

_HEX = re.compile(r"^(sha256:|md5:|sha1:)?([0-9a-fA-F]+)$")
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}
_K8S_NAME_HINT = "a Kubernetes object name: lowercase letters, digits, '-' and '.', e.g. modelcat-artifacts"
_PATTERN_HINTS = {
    "region": "an AWS region, e.g. eu-west-1",
    "execution_role_arn": "an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>",
    "alarm_topic_arn": "an SNS topic ARN: arn:aws:sns:<region>:<12-digit account>:<topic>",
    "artifact_bucket": "an S3 URI: s3://bucket/prefix (bucket names: lowercase letters, digits, '.', '-')",
    "storage_uri_prefix": "oci://host/repo or s3://bucket/prefix",
    "instance_type": "a SageMaker instance type: ml.<family>.<size>, e.g. ml.m5.large",
    "image": "a container image: host/repo:tag or host/repo@sha256:<64 hex>",
    "base_url": "an http:// or https:// URL, e.g. https://artifacts.example.com/modelcat",
    "hostnames": "a DNS hostname, optionally starting with '*.', e.g. shop.example.com",
    **dict.fromkeys(
        ("image_pull_secret", "registry_secret", "pvc", "service_account", "section_name", "grpc_section_name"),
        _K8S_NAME_HINT,
    ),
}
# Unknown fields under environments that look like inlined credentials.
_CREDENTIAL = re.compile(r"password|passwd|token|credential|access.?key|secret|auth|api.?key", re.IGNORECASE)


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg) if t is not type(None)]
    return [annotation]


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic class that validates the mapping at ``loc``."""
    current: list[Any] = [Catalog]
    for step in loc:
        following: list[Any] = []
        for kind in current:
            origin = typing.get_origin(kind)
            if isinstance(kind, type) and issubclass(kind, BaseModel) and isinstance(step, str):
                for name, info in kind.model_fields.items():
                    if step in (name, info.alias):
                        following += _unwrap(info.annotation)
            elif origin is list and isinstance(step, int):
                following += _unwrap(typing.get_args(kind)[0])
            elif origin is dict:
                following += _unwrap(typing.get_args(kind)[1])
        current = following
    for kind in current:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind
    return None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _describe(value: object, source: str | None) -> str:
    shown = source if source is not None else repr(value)
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    kind = kinds.get(type(value), "null" if value is None else type(value).__name__)
    return f"{shown} ({kind})" if value is not None else "null"


def _digest_hint(value: object) -> str:
    if not isinstance(value, str):
        return "write sha256: followed by 64 lowercase hex digits"
    match = _HEX.match(value.strip())
    if match:
        hexpart = match.group(2)
        if len(hexpart) == 32:
            return "this looks like an md5; modelcat pins artifacts by sha256: write sha256:<64 lowercase hex>"
        if len(hexpart) == 40:
            return "this looks like a sha1; write sha256:<64 lowercase hex>"
        if len(hexpart) == 64:
            return f"write it as sha256:{hexpart.lower()}"
    return (
        f"{value!r} is not a content digest (a tag or name can point at other bytes later); "
        "pin the artifact by its sha256: sha256:<64 lowercase hex> (sha256sum FILE prints it)"
    )


def _pattern_hint(field: str, value: object) -> str:
    if field == "digest":
        return _digest_hint(value)
    if field in _PATTERN_HINTS:
        return f"use {_PATTERN_HINTS[field]}"
    if field in ("name", "environment", "namespace") and isinstance(value, str):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", value.strip().lower()).strip("-")
        return f"use a DNS label: lowercase letters, digits and '-', at most 63 characters, e.g. {suggestion!r}"
    if field == "version" and isinstance(value, str):
        parts = value.lstrip("vV").split(".")
        if 1 <= len(parts) < 3 and all(p.isdigit() for p in parts):
            return f"use a semantic version with three parts, e.g. {'.'.join(parts + ['0'] * (3 - len(parts)))}"
        return "use a semantic version: MAJOR.MINOR.PATCH, e.g. 1.4.0"
    return ""


def schema_problem(error: ErrorDetails, source_of: SourceText) -> Problem:
    """One problem for one pydantic error, with a message in catalog terms and a hint."""
    loc: Loc = tuple(error["loc"])
    kind, value = error["type"], error.get("input")
    field = next((str(step) for step in reversed(loc) if isinstance(step, str)), "")
    source, quoted = source_of(loc)
    message, hint, at_key = error["msg"], "", False
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        choices = _field_names(parent) if parent else []
        message = f"unknown field {loc[-1]!r}"
        hint = did_you_mean(str(loc[-1]), choices, cutoff=0.5)
        hint += f"allowed here: {', '.join(choices)}" if choices else "remove it"
        if loc[:1] == ("environments",) and _CREDENTIAL.search(str(loc[-1])):
            hint = "credentials are never written in the catalog: create a Kubernetes Secret and name it "
            hint += "(image_pull_secret, registry_secret), or use service_account / execution_role_arn"
        at_key = True
    elif kind == "missing":
        parent = _model_at(loc[:-1])
        message = f"missing required field {loc[-1]!r}"
        hint = f"add {loc[-1]}: ..." + (f" (fields here: {', '.join(_field_names(parent))})" if parent else "")
    elif kind in ("string_type", "int_type", "float_type", "bool_type", "model_type", "dict_type", "list_type"):
        expected = {
            "string_type": "a string",
            "int_type": "a whole number",
            "float_type": "a number",
            "bool_type": "true or false",
            "model_type": "a mapping",
            "dict_type": "a mapping",
            "list_type": "a list",
        }[kind]
        message = f"expected {expected}, got {_describe(value, source)}"
        if kind == "string_type" and source is not None and not quoted and isinstance(value, (int, float, bool)):
            hint = f'YAML read {source} as {type(value).__name__}; quote it: "{source}"'
        elif kind == "bool_type" and isinstance(value, str) and value.lower() in _YAML11_BOOLS:
            hint = f"only true and false are booleans here (YAML 1.2); {value!r} is a string: write {str(value.lower() in ('yes', 'on', 'y')).lower()}"
        elif kind == "int_type" and isinstance(value, float):
            hint = "use a whole number"
    elif kind == "string_pattern_mismatch":
        message = f"{field} {value!r} is not valid"
        hint = _pattern_hint(field, value) or error["msg"]
    elif kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        message = f"{field} {_describe(value, source)} is not one of the allowed values"
        hint = f"use one of: {expected}"
    elif kind in ("too_short",) and isinstance(value, list | dict) and not value:
        message = f"{field} must not be empty"
        hint = f"add at least one entry under {field}"
    elif kind in _BOUNDS:
        limit = next(iter((error.get("ctx") or {}).values()), "")
        message = f"{field} {_describe(value, source)} is out of range: must be {_BOUNDS[kind]} {limit}"
        hint = f"change {field} to a value {_BOUNDS[kind]} {limit}"
        if field == "max_error_rate":
            hint = "max_error_rate is a fraction: write 0.01 for 1 %"
    elif kind == "value_error":
        message = str((error.get("ctx") or {}).get("error", error["msg"]))
    elif kind == "finite_number":
        message = f"{field} must be a finite number, got {_describe(value, source)}"
    if not hint:
        hint = f"see the definition of {field or 'the catalog'} in schemas/catalog.schema.json"
    return Problem(f"schema.{kind}", message, loc=loc, hint=hint, at_key=at_key)
