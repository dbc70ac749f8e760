"""The provider's configuration and the catalog it reads: what its data sources and resources share.

Configuration (both optional; relative paths resolve against Terraform's working directory)::

    provider "modelcat" {
      catalog = "models.yaml"     # the catalog the data sources read; artifact paths are relative to it
      run_dir = ".modelcat/run"   # records, routing tables and logs of the processes it starts
    }
"""

from __future__ import annotations

import os
import threading
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from tf.iface import Config, Resource
from tf.types import Unknown
from tf.utils import Diagnostics

from catalog.domain.problems import Problem
from catalog.errors import ModelcatError
from catalog.layout import STATE_ROOT, run_root
from catalog.provider.runstate import RunDir
from catalog.wording import plural

if TYPE_CHECKING:
    from catalog.domain.models import Catalog
    from catalog.validate import Report

__all__ = ["DEFAULT_CATALOG", "DEFAULT_RUN_DIR", "ProviderConfig", "RunResource", "problem_text"]

DEFAULT_CATALOG = "models.yaml"
DEFAULT_RUN_DIR = run_root(PurePosixPath(STATE_ROOT)).as_posix()  # ".modelcat/run", beside the Terraform files


def problem_text(problems: list[Problem]) -> str:
    """The lines ``modelcat validate`` prints for ``problems``, without colour."""
    lines = []
    for p in problems:
        where = f"{p.file}:{p.line}:{p.column}: " if p.line else f"{p.file}: " if p.file else ""
        path = f" {p.path}:" if p.path else ""
        lines.append(f"{where}{p.severity}:{path} {p.message} [{p.code}]")
        if p.hint:
            lines.append(f"    hint: {p.hint}")
    return "\n".join(lines)


def _setting(config: Config, key: str, default: str) -> str:
    value = config.get(key)
    return value if isinstance(value, str) and value and value is not Unknown else default


class ProviderConfig:
    """The configured catalog and run directory; the catalog validated once per provider process."""

    def __init__(self) -> None:
        self.catalog_setting = DEFAULT_CATALOG
        self.catalog_path = Path(os.getcwd(), DEFAULT_CATALOG)
        self.run = RunDir(Path(os.getcwd(), DEFAULT_RUN_DIR))
        self._report: Report | None = None
        self._lock = threading.Lock()

    def configure(self, config: Config) -> None:
        """Take the provider block's settings (the defaults for those left out)."""
        self.catalog_setting = _setting(config, "catalog", DEFAULT_CATALOG)
        self.catalog_path = Path(os.getcwd(), self.catalog_setting).resolve()
        self.run = RunDir(Path(os.getcwd(), _setting(config, "run_dir", DEFAULT_RUN_DIR)).resolve())
        self._report = None

    def report(self) -> Report:
        """The catalog validated once per provider process (raises CatalogNotFound)."""
        from catalog.validate import read_catalog_bytes, validate_bytes  # pydantic models: only when read

        with self._lock:
            if self._report is None:
                self._report = validate_bytes(read_catalog_bytes(self.catalog_path), self.catalog_setting)
            return self._report

    def catalog(self, diags: Diagnostics) -> Catalog | None:
        """The valid catalog, or None with an error diagnostic listing every problem."""
        try:
            report = self.report()
        except ModelcatError as e:
            diags.add_error(f"modelcat: {e}", f"The provider's catalog setting is {self.catalog_setting!r}.")
            return None
        if report.catalog is None or not report.ok:
            errors, warnings = plural(len(report.errors), "error"), plural(len(report.warnings), "warning")
            diags.add_error(
                f"modelcat: {report.file} is invalid ({errors}, {warnings})",
                problem_text(report.problems),
            )
            return None
        return report.catalog

    def catalog_quietly(self) -> Catalog | None:
        """The catalog if it is there and valid, else None (for optional look-ups)."""
        try:
            report = self.report()
        except ModelcatError:
            return None
        return report.catalog if report.ok else None

    def catalog_dir(self) -> Path:
        return self.catalog_path.parent


class RunResource(Resource):  # type: ignore[misc]  # tf has no types: its Resource is Any
    """A resource of the provider whose processes are on record in its configured run directory."""

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider

    @property
    def run(self) -> RunDir:
        """The provider's run directory, as configured for this Terraform run."""
        return self.provider.run
