"""A small PNG reader (8-bit RGB or RGBA, not interlaced: what Chromium's screenshots are) with zlib
and numpy, to count a screenshot's colours without an imaging library."""

from __future__ import annotations

import struct
import zlib
from collections import Counter

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(data: bytes) -> np.ndarray:
    """The image as an array (height, width, channels) of uint8."""
    assert data[:8] == SIGNATURE, "not a PNG"
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    assert header is not None, "no IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(bytes(idat)), dtype=np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), dtype=np.uint8)
    previous = np.zeros(width * channels, dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 1:  # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, channels), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            row = (line + previous) % 256
        else:
            row = _sequential(kind, line.tolist(), previous.tolist(), channels)
        out[y] = row
        previous = np.asarray(row, dtype=np.int32)
    return out.reshape(height, width, channels)


def _sequential(kind: int, line: list[int], above: list[int], bpp: int) -> np.ndarray:
    """Average (3) and Paeth (4): each byte depends on the one to its left."""
    row = [0] * len(line)
    for i, x in enumerate(line):
        a = row[i - bpp] if i >= bpp else 0
        b = above[i]
        if kind == 3:
            row[i] = (x + (a + b) // 2) & 0xFF
            continue
        c = above[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
        row[i] = (x + predictor) & 0xFF
    return np.asarray(row, dtype=np.int32)


def colour_counts(image: np.ndarray) -> Counter[str]:
    """How many pixels have each colour, as ``#rrggbb`` (alpha ignored)."""
    rgb = image[:, :, :3].reshape(-1, 3).astype(np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    return Counter({f"#{int(v):06x}": int(n) for v, n in zip(values, counts, strict=True)})
