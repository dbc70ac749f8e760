"""The regopy adapter: compile the rule files once, query their entrypoints per input, check honestly
(the rule contract itself is ``contract.RuleEngine``'s).

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
- A ``with`` keyword (``deny with input as {...}``, what every ``*_test.rego`` uses) aborts or
  crashes the whole process (regopy 1.5.2: "shape `rego-localref` has no field `rego-refhead`"),
  so modelcat never gives regopy the test files (``policy_files`` leaves them out); their
  ``test_*`` rules run under real OPA (``opa.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import ModuleType

from catalog.errors import PolicyEvalFailed, PolicyInvalid
from catalog.policy.contract import UNDEFINED, RuleEngine, RuleModule

__all__ = ["RegoPolicies"]

_ERROR_AT = re.compile(r"\(error \d+:([^|\s]+)\|(\d+)\|(\d+)")
_ERROR_MSG = re.compile(r"\(errormsg \d+:([^\n]*)\)")


def _regopy() -> tuple[ModuleType, ModuleType]:
    try:
        import regopy
        from regopy import rego_shared
    except ImportError as e:  # pragma: no cover - regopy is a dependency
        raise PolicyInvalid(f"regopy is not installed: {e}") from e
    return regopy, rego_shared


def _position(source: str, offset: int) -> tuple[int, int]:
    before = source.encode("utf-8")[:offset].decode("utf-8", errors="replace")
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


class RegoPolicies(RuleEngine):
    """The rules of one policies folder, compiled once into one regopy bundle (one Interpreter)."""

    def _compile(self, data: Mapping[str, object]) -> None:
        regopy, self._shared = _regopy()
        self._by_name = {m.name: m for m in self._modules + self._tests}
        self._it = regopy.Interpreter()
        self._it.log_level = regopy.LogLevel.NONE
        self._it.strict_built_in_errors = True
        entrypoints = []
        try:
            self._it.add_data(dict(data))
            for m in self._modules + self._tests:
                self._it.add_module(m.name, m.source)
                base = m.package.replace(".", "/")
                names = m.tests if not m.head else ("rule", m.head)
                entrypoints += [f"{base}/{name}" for name in names]
            self._bundle = self._it.build(None, entrypoints) if entrypoints else None
        except regopy.RegoError as e:
            raise self._compile_error(e) from e
        if self._bundle is not None and not self._bundle.ok():
            raise PolicyInvalid("the policies did not compile (regopy gave no detail)")

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

    # -- evaluation ------------------------------------------------------------------------------

    def _evaluate(self, m: RuleModule, entry: str, document: Mapping[str, object] | None, about: str) -> object:
        s = self._shared
        assert self._bundle is not None  # built whenever there is a module to evaluate
        self._it.set_input_term(_json(document if document is not None else {}))
        out = s.rego_bundle_query_entrypoint(
            self._it._impl, self._bundle._impl, f"{m.package.replace('.', '/')}/{entry}"
        )
        try:
            if not s.rego_output_ok(out):
                raise PolicyEvalFailed(f"{entry} failed{about}: {self._errors(s.rego_output_node(out))}", str(m.path))
            if s.rego_output_string(out) == "undefined":
                return UNDEFINED
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

    def _expression(self, root: object, m: RuleModule, entry: str) -> object:
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
