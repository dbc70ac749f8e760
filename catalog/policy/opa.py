"""Real OPA in process: the reference implementation, to check that the rules mean under it what
they mean under regopy (the engine ``modelcat policy check`` runs, ``rego.py``).

Users run the same files with OPA or conftest, so a rule that regopy and OPA read differently
(docs CHECKED.md: "Rego in process", "Real OPA") reports different findings to them. OPA v1.20.2
comes embedded, as a Go shared library with a ctypes wrapper (``opa_bindings.OpaEngine``), in the
``opa-golib-python-bindings`` 0.4.4 wheel. It is not a dependency (tagged for Python >= 3.14 and
x86_64): ``make opa`` downloads that pinned, hash-checked wheel and unpacks it into ``<venv>/opa``,
and ``opa_unavailable`` says why it cannot be used where it is missing.

How the wrapper (its engine.py) is used:

- ``add_policy(name, source)`` only parses (``parse_error``); compile errors (unsafe variables,
  type errors, unknown functions) surface at the first evaluation as ``prepare_error`` ("bundle
  activation failed: ..."), so the modules are compiled once, right after loading, by evaluating
  ``true``. Every ``<module>:<line>: <message>`` of an error becomes PolicyInvalid at that line.
- ``eval_document(path, input)`` raises ``OpaUndefinedError`` for an undefined document (it is
  a subclass of ``OpaError``: caught first); ``input=None`` evaluates without input, as ``opa
  test`` runs ``test_*`` rules. Other evaluation errors (``eval_error``: conflicting values, a
  timeout) and refused arguments (``invalid_argument``: a NUL byte or a lone surrogate) become
  PolicyEvalFailed.
- Built-in errors are not strict (OPA's default, as under ``opa eval`` and conftest): a failing
  built-in leaves its expression undefined, where regopy (strict here) raises PolicyEvalFailed.
- One engine per object; the wrapper serializes evaluations on it.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

from catalog.errors import PolicyError, PolicyEvalFailed, PolicyInvalid
from catalog.policy.contract import UNDEFINED, RuleEngine, RuleModule

__all__ = ["OPA_DIR", "OPA_WHEEL", "OpaPolicies", "opa_unavailable"]

OPA_WHEEL = ("opa-golib-python-bindings", "0.4.4")  # embeds OPA v1.20.2; the Makefile pins its hash
OPA_DIR = Path(sys.prefix) / "opa"  # where `make opa` unpacks it
_MACHINES = ("x86_64", "AMD64")
_loaded: dict[Path, ModuleType] = {}


def _bindings(folder: Path) -> ModuleType:
    """The ``opa_bindings`` package unpacked in ``folder`` (imported once, without touching sys.path)."""
    folder = folder.resolve()
    if folder in _loaded:
        return _loaded[folder]
    name, version = OPA_WHEEL
    if platform.machine() not in _MACHINES:
        raise PolicyError(f"real OPA ({name} {version}) has no build for {platform.machine()}")
    init = folder / "opa_bindings" / "__init__.py"
    if not init.is_file():
        raise PolicyError(f"real OPA is not installed in {folder}: `make opa` downloads {name} {version}")
    dist = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    if not dist.is_dir():
        found = ", ".join(p.name for p in folder.glob("*.dist-info")) or "no dist-info"
        raise PolicyError(f"{folder} holds {found}, not {name} {version}: run `make opa` again")
    spec = importlib.util.spec_from_file_location("opa_bindings", init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:  # pragma: no cover - a file location always has a loader
        raise PolicyError(f"cannot import {init}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["opa_bindings"] = module  # its own relative imports resolve through this entry
    try:
        spec.loader.exec_module(module)
        module.OpaEngine().close()  # loads the shared library: a glibc too old for it fails here
    except (ImportError, OSError) as e:
        sys.modules.pop("opa_bindings", None)
        raise PolicyError(f"cannot load real OPA from {folder}: {e}") from e
    _loaded[folder] = module
    return module


def opa_unavailable(folder: Path = OPA_DIR) -> str | None:
    """Why real OPA cannot be used here (None when it can)."""
    try:
        _bindings(folder)
    except PolicyError as e:
        return str(e)
    return None


class OpaPolicies(RuleEngine):
    """The rules of one policies folder (and their unit tests), compiled once by real OPA."""

    def __init__(
        self, files: Iterable[Path], data: Mapping[str, object], tests: Iterable[Path] = (), *, folder: Path = OPA_DIR
    ) -> None:
        self._opa = _bindings(folder)
        super().__init__(files, data, tests)

    def _compile(self, data: Mapping[str, object]) -> None:
        opa = self._opa
        self._engine = opa.OpaEngine()
        self._by_name = {str(m.path): m for m in self._modules + self._tests}
        try:
            self._engine.add_data(dict(data))
            for name, m in self._by_name.items():
                self._engine.add_policy(name, m.source)
            self._engine.eval_query("true")
        except opa.OpaError as e:
            raise self._located(e, "Rego does not compile") from e

    def _located(self, error: Exception, what: str) -> PolicyInvalid:
        """PolicyInvalid at the first ``<module>:<line>:`` of an OPA error, with every message."""
        text = getattr(error, "message", str(error))
        where, details = None, []
        for line in text.splitlines():
            for name, m in self._by_name.items():
                found = re.search(rf"(?:^|\s){re.escape(name)}:(\d+):\s*(.*)", line)
                if found:
                    where = where or (m, int(found.group(1)))
                    details.append(found.group(2))
        detail = "; ".join(dict.fromkeys(details)) or text.strip()
        if where is None:
            return PolicyInvalid(f"{what}: {detail}")
        return PolicyInvalid(f"{what}: {detail}", str(where[0].path), where[1], 1)

    def _evaluate(self, m: RuleModule, name: str, document: Mapping[str, object] | None, about: str) -> object:
        opa = self._opa
        try:
            return self._engine.eval_document(f"{m.package}.{name}", None if document is None else dict(document))
        except opa.OpaUndefinedError:
            return UNDEFINED
        except opa.OpaError as e:
            if e.code == "prepare_error":
                raise self._located(e, "Rego does not compile") from e
            raise PolicyEvalFailed(f"{name} failed{about}: {e.code}: {e.message}", str(m.path)) from e

    def _test_values(self, m: RuleModule) -> dict[str, object]:
        """The package's document at once (one query to prepare, not one per test); when it fails,
        test by test, so the failure is the test's that raised it."""
        try:
            document = self._engine.eval_document(m.package)
        except self._opa.OpaError:
            return super()._test_values(m)
        return {name: document.get(name, UNDEFINED) for name in m.tests}
