"""How messages count things and suggest names: one helper each, so no message says "1 warnings" or
"2 problem(s)", and every "did you mean" is found the same way."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "known_choices", "plural"]


def plural(count: int, noun: str, many: str = "") -> str:
    """``count`` followed by ``noun``, in the plural (``many``, default noun + "s") unless count is 1.

    ``plural(1, "model")`` is "1 model", ``plural(0, "model")`` "0 models",
    ``plural(2, "entry", "entries")`` "2 entries".
    """
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str:
    """A hint's opening, "did you mean 'x'? " (with its space), for the choice closest to ``word``;
    "" when none is close enough (``cutoff``: difflib's similarity ratio)."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f"did you mean {match[0]!r}? " if match else ""


def known_choices(word: str, choices: Iterable[str], what: str) -> str:
    """A hint for an unknown ``word``: the closest choice, then all of them, e.g. "did you mean
    '1.4.0'? known versions: 1.3.0, 1.4.0" (``what``: the choices' name, in the plural)."""
    listed = list(choices)
    return did_you_mean(word, listed) + f"known {what}: {', '.join(listed)}"
