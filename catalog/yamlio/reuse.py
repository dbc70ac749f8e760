"""Parse a catalog text that mostly equals one already parsed: only its differing models are parsed.

``modelcat review`` reads two revisions of the same file, which differ in a few models out of
thousands. Both texts are split into the items of their top-level ``models:`` list (block style: the
lines that start with the list's ``- `` at its indent); an item whose text equals an item of the known
text is not parsed again but marked ``Reused(index)``, and the caller puts the known item's value
there. Everything else (the other top-level keys and the differing items) is parsed with
:func:`catalog.yamlio.loader.parse`.

Whenever the layout is not plain enough to be sure that equal text means an equal value, the answer
is None and the caller parses the whole text: a flow-style or absent ``models:`` list, more than one
``models:`` key, anchors, aliases or tag directives anywhere (an item could then depend on text
outside it), a known text whose items do not match its known value's count, anything but comments
before the first item, or any YAML problem at all (so that every problem is reported by the full
parse, with its true line).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from catalog.yamlio.loader import parse

__all__ = ["ModelsLayout", "Reused", "parse_reusing", "split_models"]

_MODELS_KEY = re.compile(r"^models:[ \t]*(?:#[^\n]*)?$", re.MULTILINE)
_ITEM = re.compile(r"\n( *)-(?=[ \t\n])")
# The first top-level line after the list: any line at column 0 but a comment or a blank line, and
# but another item when the items are written flush with ``models:``. Patterns start with a literal
# newline rather than ``^``: the regex engine then skips ahead quickly (7 MB in milliseconds).
_END_INDENTED = re.compile(r"\n[^\s#]")
_END_FLUSH = re.compile(r"\n(?:[^\s#-]|-[^ \t\n])")
_COMMENTS_ONLY = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\n)*")
# An anchor or alias (& or * starting a token), a tag directive or a merge key: equal text could then
# mean different values. Some harmless text (e.g. "a *b" in a description) matches too: that only
# costs a full parse.
_ANCHOR_OR_ALIAS = re.compile(r"[&*][^\s\[\]{},]")


def _not_local(text: str) -> bool:
    if "<<" in text or text.startswith("%") or "\n%" in text:
        return True
    return any(m.start() == 0 or text[m.start() - 1] in " \t\n[{," for m in _ANCHOR_OR_ALIAS.finditer(text))


@dataclass(frozen=True, slots=True)
class ModelsLayout:
    """A catalog text cut around its ``models:`` list: ``before`` + ``models:`` line + lead + items + ``after``."""

    before: str  # everything before the ``models:`` line
    items: list[str]  # each item's text, from its ``-`` line to the next item (comments included)
    after: str  # from the first top-level line after the list to the end


@dataclass(frozen=True, slots=True)
class Reused:
    """A models item whose text equals item ``index`` of the known text."""

    index: int


def split_models(text: str) -> ModelsLayout | None:
    """The text's block-style ``models:`` list cut into items, or None when it is not laid out so."""
    keys = list(_MODELS_KEY.finditer(text))
    if len(keys) != 1:
        return None
    line_end = keys[0].end()  # the newline ending the models: line
    first = _ITEM.search(text, line_end)
    if first is None or _COMMENTS_ONLY.fullmatch(text, line_end + 1, first.start() + 1) is None:
        return None
    indent = first.group(1)
    end_match = (_END_INDENTED if indent else _END_FLUSH).search(text, first.end())
    end = end_match.start() + 1 if end_match else len(text)
    marker = "\n" + indent + "-"
    starts = []
    at = first.start()
    while 0 <= at < end:
        if text[at + len(marker) : at + len(marker) + 1] in (" ", "\t", "\n"):
            starts.append(at + 1)
        at = text.find(marker, at + 1, end)
    items = [text[a:b] for a, b in zip(starts, [*starts[1:], end], strict=True)]
    return ModelsLayout(text[: keys[0].start()], items, text[end:])


def parse_reusing(text: str, filename: str, known_text: str, known_count: int) -> Mapping[str, object] | None:
    """The document of ``text`` whose ``models`` list holds ``Reused(i)`` for each item equal to item
    ``i`` of ``known_text`` (a text whose parse has ``known_count`` models) and the parsed value of
    every other item; None when the caller must parse ``text`` in full (see the module's docstring)."""
    if _not_local(text) or _not_local(known_text):
        return None
    mine, theirs = split_models(text), split_models(known_text)
    if mine is None or theirs is None or len(theirs.items) != known_count:
        return None
    known: dict[str, int] = {}
    for i, item in enumerate(theirs.items):
        known.setdefault(item, i)
    fresh = [item for item in mine.items if item not in known]
    skeleton = mine.before + "models:\n" + "".join(fresh) + mine.after
    parsed = parse(skeleton, filename)
    document = parsed.data
    if parsed.problems or not isinstance(document, dict):
        return None
    values = document.get("models")
    if values is None and not fresh:
        values = []
    if not isinstance(values, list) or len(values) != len(fresh):
        return None
    parsed_items = iter(values)
    document["models"] = [Reused(known[item]) if item in known else next(parsed_items) for item in mine.items]
    return document
