"""The rule contract, whatever engine evaluates it: what a policies folder holds, what each rule
file must define, and what its ``deny``/``warn`` may hold.

A rule file (``policies/*.rego``, not ``*_test.rego``) declares one ``package``, a ``rule`` object
(id, title, severity, kinds, requires; for SARIF name, description, help_uri) and exactly one of
``deny``/``warn``: an array (or set) of
messages, each a string or ``{msg: string}``. A test file (``*_test.rego``) holds ``test_*`` rules
in a rule's package, run as ``opa test`` runs them: each must be true.

``RuleEngine`` holds the checks every engine shares; an engine (regopy in ``rego.py``, real OPA in
``opa.py``) only compiles the modules and evaluates one rule of one package on one input.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError

from catalog.domain.strict import STRICT
from catalog.errors import PolicyEvalFailed, PolicyInvalid
from catalog.policy.findings import RuleInfo, SubjectInput

__all__ = [
    "UNDEFINED",
    "RuleEngine",
    "RuleModule",
    "UnitTest",
    "policy_files",
    "read_module",
    "unit_test_files",
]

TEST_SUFFIX = "_test.rego"
_PACKAGE = re.compile(r"^package\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$", re.MULTILINE)
_HEAD = re.compile(r"^(deny|warn)\b", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_[A-Za-z0-9_]*)\b", re.MULTILINE)
UNDEFINED = object()  # what an engine's ``_evaluate`` returns for an undefined document


class _RuleMeta(BaseModel):
    model_config = STRICT

    id: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]*[0-9]{3}$")]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    severity: Literal["deny", "warn"]
    kinds: list[Literal["model", "version", "application", "binding", "resource"]] = Field(min_length=1)
    requires: list[Literal["base", "synth"]] = []
    name: Annotated[str, Field(pattern=r"^(?:[A-Z][a-z0-9]+)+$", max_length=100)] = ""  # PascalCase, as SARIF wants
    description: Annotated[str, Field(max_length=2000)] = ""
    help_uri: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)] = ""


def policy_files(folder: Path) -> list[Path]:
    """The rule files of a policies folder: its top-level ``*.rego`` files, except ``*_test.rego``."""
    return sorted(p for p in folder.glob("*.rego") if not p.name.endswith(TEST_SUFFIX))


def unit_test_files(folder: Path) -> list[Path]:
    """The unit-test files of a policies folder: its top-level ``*_test.rego`` files."""
    return sorted(folder.glob(f"*{TEST_SUFFIX}"))


@dataclass(frozen=True, slots=True)
class RuleModule:
    path: Path
    name: str  # the module's name inside the engine
    source: str
    package: str
    head: str  # "deny" or "warn" for a rule file; "" for a test file
    tests: tuple[str, ...] = ()  # the test_* rules of a test file


def read_module(path: Path, *, test: bool = False) -> RuleModule:
    """A rule file (exactly one of deny/warn), or with ``test`` a test file (its ``test_*`` rules)."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyInvalid(f"cannot read: {e}", str(path)) from e
    package = _PACKAGE.search(source)
    if package is None:
        raise PolicyInvalid("no 'package' line", str(path), 1, 1)
    if test:
        return RuleModule(
            path, path.name, source, package.group(1), "", tuple(dict.fromkeys(_TEST_RULE.findall(source)))
        )
    heads = set(_HEAD.findall(source))
    if len(heads) != 1:
        found = " and ".join(sorted(heads)) or "neither"
        raise PolicyInvalid(f"a rule file defines exactly one of deny or warn (found {found})", str(path), 1, 1)
    return RuleModule(path, path.name, source, package.group(1), heads.pop())


@dataclass(frozen=True, slots=True)
class UnitTest:
    """One ``test_*`` rule's outcome: it passes when it is true."""

    file: str
    name: str  # data path, e.g. modelcat.mc004.test_missing_metric_is_reported
    passed: bool
    detail: str = ""  # "undefined", "false", or the error


class RuleEngine(ABC):
    """The rules of one policies folder (and optionally their unit tests), compiled once."""

    def __init__(self, files: Iterable[Path], data: Mapping[str, object], tests: Iterable[Path] = ()) -> None:
        self._modules = [read_module(path) for path in files]
        self._tests = [read_module(path, test=True) for path in tests]
        packages: dict[str, Path] = {}
        for m in self._modules:
            if m.package in packages:
                raise PolicyInvalid(f"package {m.package} is also declared by {packages[m.package]}", str(m.path), 1, 1)
            packages[m.package] = m.path
        self._compile(data)
        self.rules: list[RuleInfo] = [self._rule_info(m) for m in self._modules]
        ids: dict[str, str] = {}
        for rule in self.rules:
            if rule.id in ids:
                raise PolicyInvalid(f"rule id {rule.id} is also used by {ids[rule.id]}", rule.file, 1, 1)
            ids[rule.id] = rule.file

    # -- what an engine provides -----------------------------------------------------------------

    @abstractmethod
    def _compile(self, data: Mapping[str, object]) -> None:
        """Compile ``self._modules`` and ``self._tests`` with ``data``; PolicyInvalid if they do not."""

    @abstractmethod
    def _evaluate(self, m: RuleModule, name: str, document: Mapping[str, object] | None, about: str) -> object:
        """The value of rule ``name`` of ``m``'s package for ``document`` (None: no input), or
        UNDEFINED; PolicyEvalFailed when the evaluation fails (``about`` says on what)."""

    # -- the contract ----------------------------------------------------------------------------

    def _defined(self, m: RuleModule, name: str, document: Mapping[str, object], subject: str = "") -> object:
        about = f" on {subject}" if subject else ""
        value = self._evaluate(m, name, document, about)
        if value is UNDEFINED:
            raise PolicyInvalid(f"{name} is undefined{about}: declare it so it is always defined", str(m.path))
        return value

    def _rule_info(self, m: RuleModule) -> RuleInfo:
        value = self._defined(m, "rule", {})
        try:
            meta = _RuleMeta.model_validate(value)
        except ValidationError as e:
            raise PolicyInvalid(
                "'rule' must be an object {id: MCnnn, title, severity: deny|warn, kinds: [...], requires: [...], "
                "name: PascalCase, description, help_uri}: "
                + "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors(include_url=False)),
                str(m.path),
            ) from e
        if meta.severity != m.head:
            raise PolicyInvalid(f"rule {meta.id} has severity {meta.severity} but defines {m.head}", str(m.path))
        return RuleInfo(
            meta.id,
            meta.title,
            meta.severity,
            tuple(meta.kinds),
            tuple(meta.requires),
            str(m.path),
            m.package,
            meta.name,
            meta.description,
            meta.help_uri,
        )

    def messages(self, rule: RuleInfo, item: SubjectInput) -> list[str]:
        """The messages ``rule`` gives for one input (its deny or warn array; strings or {msg})."""
        m = next(mod for mod in self._modules if mod.package == rule.package)
        value = self._defined(m, m.head, item.document, item.subject)
        if not isinstance(value, list):
            raise PolicyInvalid(
                f"{m.head} must be an array (or set) of messages, got {type(value).__name__}: "
                "write `deny := [msg | ...]` or `deny contains msg if {...}`",
                str(m.path),
            )
        found = []
        for entry in value:
            if isinstance(entry, dict) and isinstance(entry.get("msg"), str):
                entry = entry["msg"]
            if not isinstance(entry, str):
                raise PolicyInvalid(
                    f"{m.head} holds {entry!r}: each message is a string or {{msg: string}}", str(m.path)
                )
            found.append(entry)
        return found

    def unit_tests(self) -> list[UnitTest]:
        """Every ``test_*`` rule of the test files, evaluated without input (they set it ``with``)."""
        results = []
        for m in self._tests:
            values = self._test_values(m)
            for name in m.tests:
                value = values[name]
                if isinstance(value, PolicyEvalFailed):  # an error fails the test, as in `opa test`
                    detail = str(value)
                else:
                    detail = "" if value is True else ("undefined" if value is UNDEFINED else f"gave {value!r}")
                results.append(UnitTest(str(m.path), f"{m.package}.{name}", value is True, detail))
        return results

    def _test_values(self, m: RuleModule) -> dict[str, object]:
        """The value of each test rule of ``m`` (UNDEFINED, or the PolicyEvalFailed it raised)."""
        values: dict[str, object] = {}
        for name in m.tests:
            try:
                values[name] = self._evaluate(m, name, None, "")
            except PolicyEvalFailed as e:
                values[name] = e
        return values
