"""Batch work without cyclic garbage collection."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["no_gc"]


@contextmanager
def no_gc() -> Iterator[None]:
    """No cyclic garbage collection within: building tens of thousands of small objects (a large
    catalog's nodes, dicts and pydantic models) otherwise triggers full collections that cost a third
    of the time or more (measured: validating 10,000 versions 12.6 s with collections, 2.7 s
    without; 1,000 Kubernetes endpoints' bodies 0.63 s and 0.33 s). Peak memory was the same: little
    of it is cyclic. For commands that finish, never for servers."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
