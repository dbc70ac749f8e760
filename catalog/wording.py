"""How messages count things: one helper, so no message says "1 warnings" or "2 problem(s)"."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, noun: str, many: str = "") -> str:
    """``count`` followed by ``noun``, in the plural (``many``, default noun + "s") unless count is 1.

    ``plural(1, "model")`` is "1 model", ``plural(0, "model")`` "0 models",
    ``plural(2, "entry", "entries")`` "2 entries".
    """
    return f"{count} {noun if count == 1 else many or noun + 's'}"
