"""modelcat: the model catalog as code."""

from catalog.domain.models import Catalog
from catalog.domain.problems import Problem
from catalog.editing import BindResult, bind_routes
from catalog.errors import CatalogInvalid, CatalogNotFound, EditRefused, ModelcatError, UsageError
from catalog.validate import Report, load_catalog, validate_bytes, validate_file

__all__ = [
    "BindResult",
    "Catalog",
    "CatalogInvalid",
    "CatalogNotFound",
    "EditRefused",
    "ModelcatError",
    "Problem",
    "Report",
    "UsageError",
    "bind_routes",
    "load_catalog",
    "validate_bytes",
    "validate_file",
]
