"""modelcat: the model catalog as code.

Names are imported on first use, so `import catalog` (and every CLI start) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ArtifactError": "catalog.errors",
    "ArtifactTooLarge": "catalog.errors",
    "BindResult": "catalog.editing",
    "Catalog": "catalog.domain.models",
    "CatalogInvalid": "catalog.errors",
    "CatalogLocked": "catalog.errors",
    "CatalogNotFound": "catalog.errors",
    "DigestMismatch": "catalog.errors",
    "DiskFull": "catalog.errors",
    "EditRefused": "catalog.errors",
    "InferenceFailed": "catalog.errors",
    "InvalidRequest": "catalog.errors",
    "ModelcatError": "catalog.errors",
    "NotOnnx": "catalog.errors",
    "OnnxFacts": "catalog.artifacts.onnx_facts",
    "Problem": "catalog.domain.problems",
    "Registered": "catalog.register",
    "Report": "catalog.validate",
    "RoutingTableInvalid": "catalog.errors",
    "RoutingTableUnreadable": "catalog.errors",
    "StoreError": "catalog.errors",
    "UnsafeArtifact": "catalog.errors",
    "UsageError": "catalog.errors",
    "VerifyResult": "catalog.artifacts.verify",
    "bind_routes": "catalog.editing",
    "inspect_onnx": "catalog.artifacts.onnx_facts",
    "load_catalog": "catalog.validate",
    "register_version": "catalog.register",
    "validate_bytes": "catalog.validate",
    "validate_file": "catalog.validate",
    "verify_versions": "catalog.artifacts.verify",
}

__all__ = [
    "ArtifactError",
    "ArtifactTooLarge",
    "BindResult",
    "Catalog",
    "CatalogInvalid",
    "CatalogLocked",
    "CatalogNotFound",
    "DigestMismatch",
    "DiskFull",
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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'catalog' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
