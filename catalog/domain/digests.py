"""How a content digest is written: ``sha256:`` and 64 lowercase hex digits.

A leaf module (standard library only): the serving replica checks digests with it without
loading the pydantic models.
"""

from __future__ import annotations

import re
from typing import TypeGuard

__all__ = ["DIGEST", "SHA256_DIGEST", "SHA256_HEX", "is_digest"]

SHA256_HEX = r"[0-9a-f]{64}"  # the hex part alone, as it appears in a store's paths
SHA256_DIGEST = rf"sha256:{SHA256_HEX}"  # unanchored: a part of longer patterns (URIs, image references)
DIGEST = rf"^{SHA256_DIGEST}$"  # a whole value: pydantic's Field(pattern=...) and the JSON Schema

_DIGEST = re.compile(SHA256_DIGEST)


def is_digest(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a digest string, all of it (no trailing newline either)."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None
