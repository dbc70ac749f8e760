"""modelcat: the model catalog as code."""

from catalog.artifacts.onnx_facts import OnnxFacts, inspect_onnx
from catalog.artifacts.verify import VerifyResult, verify_versions
from catalog.domain.models import Catalog
from catalog.domain.problems import Problem
from catalog.editing import BindResult, bind_routes
from catalog.errors import (
    ArtifactError,
    ArtifactTooLarge,
    CatalogInvalid,
    CatalogNotFound,
    DigestMismatch,
    EditRefused,
    InferenceFailed,
    InvalidRequest,
    ModelcatError,
    NotOnnx,
    RoutingTableInvalid,
    RoutingTableUnreadable,
    StoreError,
    UnsafeArtifact,
    UsageError,
)
from catalog.register import Registered, register_version
from catalog.validate import Report, load_catalog, validate_bytes, validate_file

__all__ = [
    "ArtifactError",
    "ArtifactTooLarge",
    "BindResult",
    "Catalog",
    "CatalogInvalid",
    "CatalogNotFound",
    "DigestMismatch",
    "EditRefused",
    "InferenceFailed",
    "InvalidRequest",
    "ModelcatError",
    "NotOnnx",
    "OnnxFacts",
    "Problem",
    "Registered",
    "Report",
    "RoutingTableInvalid",
    "RoutingTableUnreadable",
    "StoreError",
    "UnsafeArtifact",
    "UsageError",
    "VerifyResult",
    "bind_routes",
    "inspect_onnx",
    "load_catalog",
    "register_version",
    "validate_bytes",
    "validate_file",
    "verify_versions",
]
