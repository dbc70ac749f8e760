"""Fast, safe YAML reading for validation.

libyaml (C) composes the node graph; a small constructor of ours turns it into plain
JSON-like values while refusing what a catalog must never contain: duplicate keys (two ``<<``
merges included), tags outside YAML 1.2's core schema, recursive aliases and alias bombs.
Scalars resolve by the YAML 1.2 core schema, so ``no`` and ``on`` stay strings and only
``true``/``false`` are booleans. Positions are only looked up again when there is a problem
to report (see :mod:`catalog.yamlio.positions`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import yaml
from yaml._yaml import CParser  # libyaml's parser, where yaml.cyaml takes it from
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from catalog.domain.problems import Problem

__all__ = ["MAX_CATALOG_BYTES", "MEMORY_PER_BYTE", "ParseResult", "compose", "decode", "parse"]

# Validating takes about 40 bytes of memory per byte of YAML (libyaml's node graph, then the values):
# about 1.9 GB at this cap, which a 2-core, 8 GB CI runner survives (BENCHMARKS.md, Validation).
MAX_CATALOG_BYTES = 48 << 20
MEMORY_PER_BYTE = 40
ALIAS_FLOOR = 100_000  # expanded nodes allowed before the ratio applies
ALIAS_RATIO = 10  # expanded nodes allowed per distinct node

_T = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
MAP, SEQ, MERGE = _T + "map", _T + "seq", _T + "merge"
_SCALAR_TAGS = {STR, INT, FLOAT, BOOL, NULL}

_CONFLICT = re.compile(r"^(<{7}|={7}|>{7})(?: .*)?$", re.MULTILINE)
_INT10 = re.compile(r"[-+]?[0-9]+")


class CoreResolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema (plus ``<<`` so merges can be checked, not silently taken)."""


for _tag, _regexp, _first in (
    (BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    (NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (MERGE, r"^(?:<<)$", "<"),
):
    CoreResolver.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))


_IMPLICIT: dict[str, list[tuple[str, re.Pattern[str]]]] = CoreResolver.yaml_implicit_resolvers


class _Composer(CParser, CoreResolver):
    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        CoreResolver.__init__(self)

    # The path resolvers of PyYAML are not used; skipping them halves the time spent here.
    def descend_resolver(self, current_node: object, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return tag
            return STR
        return MAP if kind is MappingNode else SEQ


def decode(data: bytes, filename: str) -> tuple[str, list[Problem]]:
    """UTF-8 text (a BOM is dropped), or the position of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        return "", [
            Problem(
                "yaml.encoding",
                f"byte 0x{data[e.start]:02x} is not valid UTF-8",
                hint="save the file as UTF-8",
                file=filename,
                line=line,
                column=column,
            )
        ]


def compose(text: str) -> Node | None:
    """The document's node graph (libyaml), or None for an empty document."""
    parser = _Composer(text)
    try:
        return parser.get_single_node()
    finally:
        parser.dispose()


@dataclass
class ParseResult:
    data: object = None
    problems: list[Problem] = field(default_factory=list)


def _mark_problem(code: str, message: str, mark: yaml.Mark | None, filename: str, hint: str = "") -> Problem:
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    return Problem(code, message, hint=hint, file=filename, line=line, column=column)


def conflict_markers(text: str, filename: str) -> Iterator[Problem]:
    for match in _CONFLICT.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        yield Problem(
            "yaml.conflict-marker",
            f"merge-conflict marker {match.group(1)!r} left in the file",
            hint="resolve the merge conflict and remove the <<<<<<< ======= >>>>>>> lines",
            file=filename,
            line=line,
            column=1,
        )


def _character_problem(text: str, character: int, filename: str) -> Problem:
    """Where the character libyaml refused first is: its first occurrence (any earlier one would
    have been refused before it)."""
    at = text.find(chr(character))
    line = text.count("\n", 0, at) + 1 if at >= 0 else 0
    column = at - text.rfind("\n", 0, at) if at >= 0 else 0
    what = "a NUL byte (U+0000)" if character == 0 else f"the control character U+{character:04X}"
    return Problem(
        "yaml.control-character",
        f"{what} is not allowed in a YAML file",
        hint="delete it: a catalog is plain text (a NUL often comes from a binary file or a bad paste)",
        file=filename,
        line=line,
        column=column,
    )


def parse(text: str, filename: str) -> ParseResult:
    """Parse catalog text into plain values, collecting every YAML-level problem."""
    markers = list(conflict_markers(text, filename))
    if markers:
        return ParseResult(None, markers)
    try:
        root = compose(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        message = " ".join(p for p in (e.context, e.problem) if p) or "YAML syntax error"
        if "another document" in message:
            message = "more than one YAML document; a catalog is one document"
        return ParseResult(None, [_mark_problem("yaml.syntax", message, mark, filename)])
    except yaml.reader.ReaderError as e:  # a character YAML does not allow (libyaml gives no line)
        return ParseResult(None, [_character_problem(text, e.character, filename)])
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "mark", None)
        return ParseResult(None, [_mark_problem("yaml.syntax", str(e).splitlines()[0], mark, filename)])
    builder = _Builder(filename)
    data = builder.build(root) if root is not None else None
    if data is None and not builder.problems:
        builder.problems.append(
            Problem(
                "yaml.empty",
                "the catalog is empty",
                hint="start with 'apiVersion: modelcat/v1' and a 'models:' list",
                file=filename,
                line=1,
                column=1,
            )
        )
    return ParseResult(data, builder.problems)


class _AliasBomb(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


class _Builder:
    """Turns a node graph into dicts, lists and scalars, noting each problem with its mark.

    The graph is consumed: a collection's children are dropped from it once built, so its nodes
    (and their marks, most of the memory validation takes) are freed while the values grow,
    and only collections are remembered for aliases (an alias of a scalar is built again).
    """

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []
        self.reported: set[Problem] = set()
        self.done: dict[int, tuple[object, int]] = {}  # id(collection node) -> (value, expanded size)
        self.active: set[int] = set()
        self.distinct = 0
        self.expanded = 0

    def problem(self, code: str, message: str, node: Node, hint: str = "") -> None:
        problem = _mark_problem(code, message, node.start_mark, self.filename, hint)
        if problem not in self.reported:  # an aliased scalar is checked again at each alias
            self.reported.add(problem)
            self.problems.append(problem)

    def build(self, root: Node) -> object:
        try:
            return self.node(root)[0]
        except _AliasBomb as bomb:
            self.problems.append(
                _mark_problem(
                    "yaml.alias-budget",
                    f"aliases expand to more than {self.expanded:,} nodes (from {self.distinct:,} written)",
                    bomb.node.start_mark,
                    self.filename,
                    hint="this looks like an alias bomb; write the values out or use fewer nested aliases",
                )
            )
            return None

    def node(self, node: Node) -> tuple[object, int]:
        if isinstance(node, ScalarNode):  # an alias of a scalar is built again: as cheap as a lookup
            self.distinct += 1
            self.expanded += 1
            return self.scalar(node), 1
        key = id(node)
        seen = self.done.get(key)
        if seen is not None:  # an alias: shared value, but it counts as expanded again
            self.expanded += seen[1]
            if self.expanded > ALIAS_FLOOR + ALIAS_RATIO * self.distinct:
                raise _AliasBomb(node)
            return seen
        if key in self.active:
            self.problem("yaml.recursive-alias", "an alias refers to a node that contains it", node)
            return None, 1
        self.distinct += 1
        self.expanded += 1
        self.active.add(key)
        try:
            result = self.mapping(node) if isinstance(node, MappingNode) else self.sequence(cast(SequenceNode, node))
        finally:
            self.active.discard(key)
        self.done[key] = result
        return result

    def check_tag(self, node: Node, expected: str | set[str]) -> bool:
        tag = node.tag
        if tag == expected or (isinstance(expected, set) and tag in expected):
            return True
        shown = tag.replace(_T, "!!")
        self.problem(
            "yaml.unsafe-tag",
            f"tag {shown} is not allowed",
            node,
            hint="a catalog holds plain strings, numbers, booleans, lists and mappings; remove the tag",
        )
        return False

    def scalar(self, node: ScalarNode) -> object:
        tag, value = node.tag, node.value
        if tag == STR:
            return value
        if not self.check_tag(node, _SCALAR_TAGS):
            return None
        if tag == INT:
            if _INT10.fullmatch(value):
                return int(value, 10)
            return int(value, 16 if value[1] in "xX" else 8)
        if tag == FLOAT:
            lowered = value.lower()
            if lowered.endswith(("inf", "nan")):
                return float(lowered.replace(".", ""))
            return float(value)
        if tag == BOOL:
            return value in ("true", "True", "TRUE")
        return None

    def sequence(self, node: SequenceNode) -> tuple[object, int]:
        self.check_tag(node, SEQ)
        items: list[object] = []
        size = 1
        children = node.value
        for i, child in enumerate(children):
            value, child_size = self.node(child)
            children[i] = None  # built: let its nodes go now (see _Builder)
            items.append(value)
            size += child_size
        return items, size

    def mapping(self, node: MappingNode) -> tuple[object, int]:
        self.check_tag(node, MAP)
        result: dict[object, object] = {}
        size = 1
        merges: list[tuple[Node, Node]] = []
        first_key: dict[object, Node] = {}
        pairs = node.value
        for i, (key_node, value_node) in enumerate(pairs):
            pairs[i] = None  # built below: let its nodes go now (see _Builder)
            if key_node.tag == MERGE:
                merges.append((key_node, value_node))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem("yaml.complex-key", "a mapping key must be a plain value", key_node)
                continue
            key = self.scalar(key_node)
            if key in first_key:
                earlier = first_key[key].start_mark.line + 1
                self.problem(
                    "yaml.duplicate-key",
                    f"duplicate key {key!r} (first defined on line {earlier})",
                    key_node,
                    hint="YAML keeps only one of them silently elsewhere; keep one and delete the other",
                )
                continue
            first_key[key] = key_node
            value, child_size = self.node(value_node)
            result[key] = value
            size += child_size
        if len(merges) > 1:
            earlier = merges[0][0].start_mark.line + 1
            for key_node, _ in merges[1:]:
                self.problem(
                    "yaml.duplicate-key",
                    f"duplicate merge key '<<' (first on line {earlier})",
                    key_node,
                    hint="merge several anchors with one key: '<<: [*a, *b]'",
                )
        if merges:
            size += self.merge(result, merges[0][1])
        return result, size

    def merge(self, target: dict[object, object], source: Node) -> int:
        """Apply a ``<<`` merge: explicit keys win, then earlier sources over later ones."""
        sources = source.value if isinstance(source, SequenceNode) else [source]
        size = 0
        for item in sources:
            value, item_size = self.node(item)
            size += item_size
            if not isinstance(value, dict):
                self.problem("yaml.bad-merge", "'<<' must merge a mapping or a list of mappings", item)
                continue
            for key, child in value.items():
                target.setdefault(key, child)
        return size
