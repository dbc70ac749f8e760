"""The regopy adapter: compile the rule files once, query their entrypoints per input, check honestly.

regopy (rego-cpp) differs from OPA in ways that matter here (docs CHECKED.md):

- ``Interpreter.query`` recompiles on every call, and after a good query a broken one may return
  the previous result; so the modules are built once into a bundle and only its entrypoints are
  queried (``query_bundle_entrypoint``).
- A compile error is raised by ``add_module`` or ``build``; the default log level prints it on
  stdout, so the level is NONE and the error is translated into PolicyInvalid with file:line.
- A query can fail with ``ok()`` True and an error tree as its result (a missing function), or
  with ``ok()`` False (a type error, conflicting values): both become PolicyEvalFailed, never an
  empty result. Built-in errors are made strict so they are not silently undefined.
- The result's JSON text does not escape quotes in strings built at evaluation time, so results
  are read from the node tree, never from ``str(output)``. The input is set as a JSON term
  (``Input`` fails on a backslash in a string: "Invalid escape sequence"), so strings stay
  JSON-escaped inside regopy and are decoded when read (``_string``).
- One Interpreter per thread: a RegoPolicies object must not be shared between threads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from catalog.errors import PolicyEvalFailed, PolicyInvalid
from catalog.policy.findings import RuleInfo, SubjectInput

__all__ = ["KINDS", "RegoPolicies", "policy_files"]

KINDS = ("model", "version", "application", "binding", "resource")
_PACKAGE = re.compile(r"^package\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$", re.MULTILINE)
_HEAD = re.compile(r"^(deny|warn)\b", re.MULTILINE)
_ERROR_AT = re.compile(r"\(error \d+:([^|\s]+)\|(\d+)\|(\d+)")
_ERROR_MSG = re.compile(r"\(errormsg \d+:([^\n]*)\)")


class _RuleMeta(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

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
    return sorted(p for p in folder.glob("*.rego") if not p.name.endswith("_test.rego"))


@dataclass(frozen=True, slots=True)
class _Module:
    path: Path
    name: str  # module name given to regopy
    source: str
    package: str
    head: str  # "deny" or "warn"


def _regopy():
    try:
        import regopy
        from regopy import rego_shared
    except ImportError as e:  # pragma: no cover - regopy is a dependency
        raise PolicyInvalid(f"regopy is not installed: {e}") from e
    return regopy, rego_shared


def _position(source: str, offset: int) -> tuple[int, int]:
    before = source.encode("utf-8")[:offset].decode("utf-8", errors="replace")
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


class RegoPolicies:
    """The rules of one policies folder, compiled once into one bundle (one Interpreter)."""

    def __init__(self, files: Iterable[Path], data: Mapping[str, object]) -> None:
        regopy, self._shared = _regopy()
        self._modules = [self._read(path) for path in files]
        self._by_name = {m.name: m for m in self._modules}
        packages: dict[str, Path] = {}
        for m in self._modules:
            if m.package in packages:
                raise PolicyInvalid(f"package {m.package} is also declared by {packages[m.package]}", str(m.path), 1, 1)
            packages[m.package] = m.path
        self._it = regopy.Interpreter()
        self._it.log_level = regopy.LogLevel.NONE
        self._it.strict_built_in_errors = True
        entrypoints = []
        try:
            self._it.add_data(dict(data))
            for m in self._modules:
                self._it.add_module(m.name, m.source)
                base = m.package.replace(".", "/")
                entrypoints += [f"{base}/rule", f"{base}/{m.head}"]
            self._bundle = self._it.build(None, entrypoints) if entrypoints else None
        except regopy.RegoError as e:
            raise self._compile_error(e) from e
        if self._bundle is not None and not self._bundle.ok():
            raise PolicyInvalid("the policies did not compile (regopy gave no detail)")
        self.rules: list[RuleInfo] = [self._rule_info(m) for m in self._modules]
        ids: dict[str, str] = {}
        for rule in self.rules:
            if rule.id in ids:
                raise PolicyInvalid(f"rule id {rule.id} is also used by {ids[rule.id]}", rule.file, 1, 1)
            ids[rule.id] = rule.file

    # -- loading ---------------------------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> _Module:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise PolicyInvalid(f"cannot read: {e}", str(path)) from e
        package = _PACKAGE.search(source)
        if package is None:
            raise PolicyInvalid("no 'package' line", str(path), 1, 1)
        heads = set(_HEAD.findall(source))
        if len(heads) != 1:
            found = " and ".join(sorted(heads)) or "neither"
            raise PolicyInvalid(f"a rule file defines exactly one of deny or warn (found {found})", str(path), 1, 1)
        return _Module(path, path.name, source, package.group(1), heads.pop())

    def _compile_error(self, error: Exception) -> PolicyInvalid:
        text = str(error.args[0]) if error.args else str(error)
        messages = _ERROR_MSG.findall(text)
        where = _ERROR_AT.search(text)
        detail = "; ".join(dict.fromkeys(messages)) or text.strip().splitlines()[0]
        if where is not None and where.group(1) in self._by_name:
            module = self._by_name[where.group(1)]
            line, column = _position(module.source, int(where.group(2)))
            return PolicyInvalid(f"Rego does not compile: {detail}", str(module.path), line, column)
        return PolicyInvalid(f"Rego does not compile: {detail}")

    def _rule_info(self, m: _Module) -> RuleInfo:
        value = self._query(m, "rule", {})
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

    # -- evaluation ------------------------------------------------------------------------------

    def _query(self, m: _Module, entry: str, document: Mapping[str, object], subject: str = "") -> object:
        s = self._shared
        self._it.set_input_term(_json(document))
        out = s.rego_bundle_query_entrypoint(
            self._it._impl, self._bundle._impl, f"{m.package.replace('.', '/')}/{entry}"
        )
        try:
            about = f" on {subject}" if subject else ""
            if not s.rego_output_ok(out):
                raise PolicyEvalFailed(f"{entry} failed{about}: {self._errors(s.rego_output_node(out))}", str(m.path))
            if s.rego_output_string(out) == "undefined":
                raise PolicyInvalid(f"{entry} is undefined{about}: declare it so it is always defined", str(m.path))
            root = s.rego_output_node(out)
            kind = s.rego_node_type(root)
            if kind in (self._kind("Error"), self._kind("ErrorSeq")):
                raise PolicyEvalFailed(f"{entry} failed{about}: {self._errors(root)}", str(m.path))
            return self._expression(root, m, entry)
        finally:
            s.rego_free_output(out)

    def _kind(self, name: str) -> object:
        from regopy import NodeKind

        return getattr(NodeKind, name)

    def _errors(self, node: object) -> str:
        s = self._shared
        found: list[str] = []

        def walk(h: object) -> None:
            kind = s.rego_node_type(h)
            if kind in (self._kind("ErrorMessage"), self._kind("ErrorCode")):
                found.append(str(s.rego_node_value(h)))
            for i in range(s.rego_node_size(h)):
                walk(s.rego_node_get(h, i))

        walk(node)
        return " ".join(found) or "an error without a message"

    def _expression(self, root: object, m: _Module, entry: str) -> object:
        """The single expression of a Results tree, as Python values."""
        s = self._shared
        results = [s.rego_node_get(root, i) for i in range(s.rego_node_size(root))]
        if len(results) != 1:
            raise PolicyInvalid(f"{entry} gave {len(results)} results, expected one", str(m.path))
        terms = s.rego_node_get(results[0], 0)
        if s.rego_node_size(terms) != 1:
            raise PolicyInvalid(f"{entry} gave {s.rego_node_size(terms)} values, expected one", str(m.path))
        return self._value(s.rego_node_get(terms, 0))

    def _value(self, h: object) -> object:
        s, k = self._shared, self._kind
        kind = s.rego_node_type(h)
        size = s.rego_node_size(h)
        if kind in (k("Term"), k("Scalar")):
            return self._value(s.rego_node_get(h, 0))
        if kind in (k("Array"), k("Set")):
            return [self._value(s.rego_node_get(h, i)) for i in range(size)]
        if kind == k("Object"):
            items = {}
            for i in range(size):
                item = s.rego_node_get(h, i)
                items[str(self._value(s.rego_node_get(item, 0)))] = self._value(s.rego_node_get(item, 1))
            return items
        if kind == k("String"):
            return _string(s.rego_node_value(h))
        if kind == k("Int"):
            return int(s.rego_node_value(h))
        if kind == k("Float"):
            return float(s.rego_node_value(h))
        if kind in (k("True_"), k("False_"), k("Boolean")):
            return s.rego_node_value(h) == "true"
        if kind == k("Null"):
            return None
        raise PolicyEvalFailed(f"unexpected value of kind {kind} in a rule's result")

    def messages(self, rule: RuleInfo, item: SubjectInput) -> list[str]:
        """The messages ``rule`` gives for one input (its deny or warn array; strings or {msg})."""
        m = next(mod for mod in self._modules if mod.package == rule.package)
        value = self._query(m, m.head, item.document, item.subject)
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


def _json(document: Mapping[str, object]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _string(value: str) -> str:
    """A string node's text. With the input set as a JSON term, regopy keeps strings in their JSON
    form: escaped, and sometimes with the quotes (literals of the policy). Both are decoded; a text
    that is not valid JSON (a regopy quirk such as sprintf of format_int) is taken as it is."""
    try:
        decoded = json.loads(value if value.startswith('"') else f'"{value}"')
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value
