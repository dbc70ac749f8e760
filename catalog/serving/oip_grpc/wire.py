"""The protobuf wire format, for the few places that read or write a message without parsing all of
it: the router reads a request's model and version and forwards the rest untouched; a replica reads
the megabytes of ``raw_input_contents`` as views of the bytes it received, and writes
``raw_output_contents`` after the rest of its answer, instead of copying them through protobuf.

A message is a run of fields, each a key (field number << 3 | wire type) and a value: a varint
(type 0), 8 bytes (1), a length-delimited run of bytes (2) or 4 bytes (5). Fields may come in any
order; a field given twice is repeated, or, for a singular one, the last occurrence wins.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["LENGTH_DELIMITED", "Field", "fields", "length_delimited", "read_varint", "split_field", "varint"]

LENGTH_DELIMITED = 2

Field = tuple[int, int, int, int]  # (number, wire type, start of the value, end of the value)


def read_varint(data: bytes | memoryview, at: int) -> tuple[int, int]:
    """The varint at ``at`` and where it ends. IndexError when ``data`` ends inside it."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise ValueError("a varint longer than 10 bytes")


def varint(value: int) -> bytes:
    """``value`` (>= 0) as a base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(number: int, size: int) -> bytes:
    """The key and length that come before a length-delimited value of ``size`` bytes in field ``number``."""
    return varint(number << 3 | LENGTH_DELIMITED) + varint(size)


def fields(message: bytes | memoryview) -> Iterator[Field]:
    """The top-level fields of a serialized message, in the order they come, without reading their
    values. ValueError when the message is not well-formed at the top level."""
    at, end = 0, len(message)
    try:
        while at < end:
            key, at = read_varint(message, at)
            number, kind = key >> 3, key & 7
            if kind == LENGTH_DELIMITED:
                size, at = read_varint(message, at)
                start, at = at, at + size
                if at > end:
                    raise ValueError(f"field {number} runs past the end of the message")
            elif kind == 0:
                start = at
                _, at = read_varint(message, at)
            elif kind in (1, 5):
                start, at = at, at + (8 if kind == 1 else 4)
                if at > end:
                    raise ValueError("the last field runs past the end of the message")
            else:
                raise ValueError(f"wire type {kind} of field {number}")
            yield number, kind, start, at
    except IndexError:
        raise ValueError("the message ends inside a field") from None


def split_field(message: bytes, number: int) -> tuple[bytes, list[memoryview]]:
    """``message`` without its length-delimited field ``number``, and each occurrence's value as a
    view of ``message`` (not copied), in order. ValueError as ``fields``, or when field ``number``
    is not length-delimited."""
    view = memoryview(message)
    kept: list[memoryview] = []
    values: list[memoryview] = []
    cut = 0  # where the part of the message not yet kept or cut out begins
    at = 0  # where the current field's key begins
    for field, kind, start, end in fields(message):
        if field == number:
            if kind != LENGTH_DELIMITED:
                raise ValueError(f"field {number} has wire type {kind}, not a length-delimited value")
            kept.append(view[cut:at])
            values.append(view[start:end])
            cut = end
        at = end
    if not values:
        return message, values
    kept.append(view[cut:])
    return b"".join(kept), values
