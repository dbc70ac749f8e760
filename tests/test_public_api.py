"""The public API is what __all__ says, and every name in it exists."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import catalog

PUBLIC = [
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


def test_package_all_is_the_documented_api():
    assert sorted(catalog.__all__) == sorted(PUBLIC)


def _modules() -> list[str]:
    """Every module of the package but its private ones and the packages that only group modules."""
    names = []
    for info in pkgutil.walk_packages(catalog.__path__, "catalog."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if info.ispkg and info.name != "catalog.synth":
            init = Path(importlib.util.find_spec(info.name).origin).read_text(encoding="utf-8")
            if "__all__" not in init and "def " not in init and "class " not in init and " = " not in init:
                continue  # a docstring only: the package groups modules
        names.append(info.name)
    return names


MODULES = ["catalog", *_modules()]


def test_the_module_list_is_the_package() -> None:
    assert {"catalog.policy.opa", "catalog.revisions", "catalog.domain.stores", "catalog.wording"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_every_exported_name_exists(module):
    mod = importlib.import_module(module)
    assert hasattr(mod, "__all__"), f"{module} does not say what it exports"
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing


def test_load_catalog_raises_one_error_with_every_problem(write):
    from tests.helpers import MINIMAL

    path = write(
        MINIMAL.replace("weight: 10}", "weight: 11}").replace(
            "enabled: true", "enabled: true\n        sticky_key: X-User"
        )
    )
    with pytest.raises(catalog.CatalogInvalid) as info:
        catalog.load_catalog(path)
    assert info.value.exit_code == 1
    assert sorted(p.code for p in info.value.problems) == ["schema.string_pattern_mismatch"]


def test_domain_does_no_io():
    import ast
    from pathlib import Path

    for source in (Path(catalog.__file__).parent / "domain").glob("*.py"):
        tree = ast.parse(source.read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        imports = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in (n.names if isinstance(n, ast.Import) else [ast.alias(n.module or "")])
        }
        assert not names & {"open", "print"}, source
        assert not imports & {"os", "pathlib", "subprocess", "yaml", "ruamel", "click", "io"}, source
