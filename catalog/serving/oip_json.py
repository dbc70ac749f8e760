"""Large JSON inference requests decoded in bounded memory: ``oip.parse_request``'s answer, without
building a Python object per value.

``json.loads`` turns a body of N bytes into a str of N characters and a Python list holding an
object per element (about 32 bytes for a float written in about 20), then ``oip`` converts the list:
about four times N above the body. Here (``parse_request_bounded``) the body stays bytes. A small
scanner finds each input's ``data`` array that holds no string or object; a large one is cut out of
the document, replaced by ``null``, and the rest (small) goes to ``json.loads``. The array itself is
read piece by piece (about ``PIECE_BYTES`` each, cut at commas): each piece is ``json.loads`` of
``[piece]``, checked and converted by the very functions ``oip`` uses for a whole array
(``_flatten``, ``_convert``), into one array of the input's datatype. Every element is read by
``json`` and converted independently of its neighbours, so the result is the same array.

Anything out of the ordinary (a body under ``MIN_BYTES``, not UTF-8, a duplicate key, an array the
pieces cannot read, a value the conversion refuses, a length that is not the shape's) sends the whole
text to ``json.loads`` as ``oip.parse_request`` does: errors, and their order, are always its own.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from catalog.errors import InvalidRequest
from catalog.serving.oip import (
    DATATYPES,
    InferenceRequest,
    TensorMeta,
    _check_tensor,
    _convert,
    _flatten,
    _reject_constant,
    _split_body,
    decode_payload,
    load_json,
)

__all__ = ["MIN_BYTES", "PIECE_BYTES", "parse_request_bounded"]

MIN_BYTES = 1 << 16  # a smaller JSON part goes to json.loads whole: nothing to save, nothing to risk
PIECE_BYTES = 1 << 18  # text read by one json.loads while converting a large array
MAX_TOKENS = 4096  # strings and punctuation outside the cut arrays, before the scan gives up
_TOKEN = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[][{}:,]', re.DOTALL)  # a string, or punctuation
_SPACE = re.compile(rb"[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class _Span:
    """The ``data`` array of ``inputs[entry]``: ``text[start:end]``, brackets included; ``cuts`` are
    positions of commas between its elements where pieces may end."""

    entry: int
    start: int
    end: int
    cuts: tuple[int, ...]


class _Ordinary(Exception):
    """The body is not one this module reads: ``oip.parse_request`` takes it."""


def parse_request_bounded(
    body: bytes | bytearray,
    inputs: Sequence[TensorMeta],
    outputs: Sequence[TensorMeta],
    header_length: str | None = None,
) -> InferenceRequest:
    """``oip.parse_request(body, inputs, outputs, header_length)``, with large JSON data arrays
    converted piece by piece (module docstring)."""
    text, binary = _split_body(body, header_length)
    try:
        payload = _load(text) if len(text) >= MIN_BYTES else load_json(text, header_length)
    except _Ordinary:
        payload = load_json(text, header_length)
    return decode_payload(payload, binary, inputs, outputs)


def _load(text: bytes | bytearray) -> Any:
    """``json.loads(text)`` with the large data arrays converted, or ``_Ordinary``."""
    if json.detect_encoding(text) != "utf-8":
        raise _Ordinary
    spans = _data_arrays(text)
    if not spans:
        raise _Ordinary
    view, at = memoryview(text), 0
    parts: list[bytes | memoryview] = []
    for span in spans:
        parts += (view[at : span.start], b"null")
        at = span.end
    parts.append(view[at:])
    try:
        payload = json.loads(b"".join(parts).decode("utf-8", "surrogatepass"), parse_constant=_reject_constant)
        entries = [payload["inputs"][span.entry] for span in spans]
    except (ValueError, RecursionError, InvalidRequest, TypeError, KeyError, IndexError):
        raise _Ordinary from None
    for span, entry in zip(spans, entries, strict=True):
        if not isinstance(entry, dict) or entry.get("data", 0) is not None:
            raise _Ordinary
        entry["data"] = _convert_array(text, span, entry.get("datatype"), entry.get("shape"))
    return payload


def _convert_array(text: bytes | bytearray, span: _Span, datatype: object, shape: object) -> np.ndarray:
    """The array ``text[span]`` as ``oip.decode_tensor`` would convert it, read piece by piece."""
    where = f"input {span.entry}"
    try:
        datatype, dims = _check_tensor(datatype, shape, where)
    except InvalidRequest:
        raise _Ordinary from None
    count = math.prod(dims)
    if count > span.end - span.start:  # the text cannot hold that many elements
        raise _Ordinary
    out = np.empty(count, dtype=DATATYPES[datatype])
    filled = rows = 0
    nested = text.find(b"[", span.start + 1, span.end) != -1
    for piece in _pieces(text, span):
        try:
            items = json.loads(piece.decode("utf-8", "surrogatepass"), parse_constant=_reject_constant)
        except (ValueError, RecursionError, InvalidRequest):
            raise _Ordinary from None
        if not items and span.cuts:  # an empty piece: two commas in a row, or one at an end
            raise _Ordinary
        if nested and (len(dims) < 2 or not items or type(items[0]) is not list):  # else _flatten takes it as flat data
            raise _Ordinary
        try:
            flat = _flatten(items, (len(items), *dims[1:]), where) if nested else items
            if filled + len(flat) > count:
                raise _Ordinary
            out[filled : filled + len(flat)] = _convert(flat, datatype, where)
        except InvalidRequest:
            raise _Ordinary from None
        filled, rows = filled + len(flat), rows + len(items)
    if filled != count or (nested and rows != dims[0]):
        raise _Ordinary
    return out


def _pieces(text: bytes | bytearray, span: _Span) -> Iterator[bytes]:
    """The array ``text[span]`` as JSON arrays of consecutive elements, cut at ``span.cuts``."""
    view = memoryview(text)
    starts = [span.start + 1, *(cut + 1 for cut in span.cuts)]
    ends = [*span.cuts, span.end - 1]
    for start, end in zip(starts, ends, strict=True):
        yield b"".join((b"[", view[start:end], b"]"))


@dataclass(slots=True)
class _Frame:
    """An open object or array while scanning: its role in the request, the last key read (objects)
    or the index of the element being read (arrays)."""

    kind: int  # ord("{") or ord("[")
    role: str | None  # "top", "inputs", "entry" or None
    entry: int = -1  # the index of an "entry" in inputs
    key: str | None = None
    index: int = 0
    keys: set[str] | None = None


def _data_arrays(text: bytes | bytearray) -> list[_Span]:
    """The large ``data`` arrays of the request's inputs that hold no string or object, in order.

    A scanner of JSON tokens that jumps over such arrays (``_array_extent``) and gives up
    (``_Ordinary``) after ``MAX_TOKENS`` others, or at a repeated "inputs" or "data" key (json keeps
    the last). It trusts the text to be JSON: ``_load`` parses what it leaves, and the pieces what it
    cut, so a text that is not JSON fails there."""
    frames: list[_Frame] = []
    spans: list[_Span] = []
    pos = tokens = 0
    while (match := _TOKEN.search(text, pos)) is not None:
        tokens += 1
        if tokens > MAX_TOKENS:
            raise _Ordinary
        at, pos = match.span()
        char, frame = text[at], (frames[-1] if frames else None)
        if char == ord('"'):
            if frame is not None and frame.kind == ord("{") and _next(text, pos) == b":":
                frame.key = _key(match.group())
                if frame.keys is not None:
                    if frame.key in frame.keys:
                        raise _Ordinary
                    frame.keys.add(frame.key)
        elif char == ord(","):
            if frame is not None:
                frame.index += 1
        elif char in b"}]":
            if not frames:
                raise _Ordinary
            frames.pop()
        elif char in b"{[":
            role = _role(frame, char)
            if char == ord("["):
                extent = _array_extent(text, at)
                if extent is not None:
                    end, cuts = extent
                    if role == "data" and frame is not None and end - at >= MIN_BYTES:
                        spans.append(_Span(frame.entry, at, end, cuts))
                    pos = end
                    continue
            entry = frame.index if role == "entry" and frame is not None else -1
            keys: set[str] | None = set() if role in ("top", "entry") else None
            frames.append(_Frame(char, role, entry, keys=keys))
    return spans


def _role(parent: _Frame | None, char: int) -> str | None:
    """The role of an object or array opening (``char``) inside ``parent``."""
    if parent is None:
        return "top" if char == ord("{") else None
    if char == ord("[") and parent.role == "top" and parent.key == "inputs":
        return "inputs"
    if char == ord("{") and parent.role == "inputs":
        return "entry"
    if char == ord("[") and parent.role == "entry" and parent.key == "data":
        return "data"
    return None


def _key(raw: bytes) -> str:
    """A key's text from its JSON string (quotes and escapes)."""
    try:
        key = json.loads(raw) if b"\\" in raw else raw[1:-1].decode("utf-8")
    except ValueError:
        raise _Ordinary from None
    assert isinstance(key, str)
    return key


def _array_extent(text: bytes | bytearray, start: int) -> tuple[int, tuple[int, ...]] | None:
    """The end of the array opening at ``start``, and commas between its elements about
    ``PIECE_BYTES`` apart; None when it holds a string or an object (its brackets could be text)."""
    extent = _regular_extent(text, start) or _walked_extent(text, start)
    if extent is None or text.find(b'"', start, extent[0]) != -1 or text.find(b"{", start, extent[0]) != -1:
        return None
    return extent


def _regular_extent(text: bytes | bytearray, start: int) -> tuple[int, tuple[int, ...]] | None:
    """The extent of an array nested as its first element is (``[[[`` for rank 3, say), closed by as
    many brackets in a row, its elements cut where as many but one close before a comma: found with
    ``bytes.find`` alone. None when the brackets found do not balance (then ``_walked_extent``). The
    pieces' parsing checks the rest: an extent that is not the array's fails there."""
    rank, at = 0, start
    while text[at : at + 1] == b"[":
        rank, at = rank + 1, _skip_space(text, at + 1)
    end = text.find(b"]" * rank, start) + rank
    if end < start + rank or text.count(b"[", start, end) != text.count(b"]", start, end):
        return None
    cuts: list[int] = []
    separator = b"]" * (rank - 1) + b","  # the end of an element and the comma after it
    at = start + PIECE_BYTES
    while (found := text.find(separator, at, end)) != -1:
        cuts.append(found + rank - 1)
        at = found + rank + PIECE_BYTES
    return end, tuple(cuts)


def _walked_extent(text: bytes | bytearray, start: int) -> tuple[int, tuple[int, ...]] | None:
    """The extent of any array, bracket by bracket, cut after elements that end about
    ``PIECE_BYTES`` apart; None when its brackets are too dense for a piece-wise read to pay."""
    depth, brackets, last = 0, 0, start
    cuts: list[int] = []
    opening, closing = start, text.find(b"]", start)
    while closing != -1:
        brackets += 1
        if brackets > 1024 and brackets * 32 > closing - start:
            return None
        if opening != -1 and opening < closing:
            depth += 1
            opening = text.find(b"[", opening + 1)
            continue
        depth -= 1
        if depth == 0:
            return closing + 1, tuple(cuts)
        if depth == 1 and closing - last >= PIECE_BYTES and _next(text, closing + 1) == b",":
            last = _skip_space(text, closing + 1)
            cuts.append(last)
        closing = text.find(b"]", closing + 1)
    return None


def _skip_space(text: bytes | bytearray, pos: int) -> int:
    """The position of the first character at or after ``pos`` that is not JSON whitespace."""
    match = _SPACE.match(text, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _next(text: bytes | bytearray, pos: int) -> bytes:
    """The first character at or after ``pos`` that is not JSON whitespace (empty at the end)."""
    at = _skip_space(text, pos)
    return bytes(text[at : at + 1])
