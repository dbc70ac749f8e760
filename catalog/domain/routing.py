"""Traffic-split arithmetic: sticky keys to buckets, weights to bucket tables. Pure, no IO.

A split of one model's traffic between versions is a table of ``BUCKETS`` (100) slots, one per
percent. Routes are laid out cumulatively in their declared order: with ``[stable 90, canary 10]``
buckets 0-89 are the stable version and 90-99 the canary. Raising the canary to 20 turns buckets
80-89 over to it and touches nothing else, so a user already on the canary stays there; in
general the *last* declared route grows at the expense of the one before it without reshuffling
anyone it already has. Declare the version being rolled out last.

A request with a sticky key (a header value such as a user id) lands in ``bucket_of(key)``, a
sha256 of the key: the same key always gets the same bucket, hence the same version as long as
that bucket's owner does not change. A request without a key draws a bucket uniformly at random,
which gives every version exactly its weight in expectation.

Keys are salted with the model name by the router, so one user's buckets for two models of an
application are independent (two experiments do not share their treatment groups).

``key_hash`` is the form of a key that may be written to logs: a different, domain-separated
sha256, so a log never holds the raw key and the log hash is not the bucket hash. It is
pseudonymous, not anonymous: whoever holds a list of candidate keys can hash them and match.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple, Protocol

__all__ = [
    "BUCKETS",
    "KEY_HASH_DOMAIN",
    "SPLIT_HINT",
    "Assignment",
    "RandomSource",
    "bucket_of",
    "bucket_ranges",
    "bucket_table",
    "key_hash",
    "pick_version",
    "shares",
    "split_problem",
]

BUCKETS = 100
SPLIT_HINT = f"weights are integer percentages; make them sum to exactly {BUCKETS}"
KEY_HASH_DOMAIN = b"modelcat/sticky-key\x00"

How = Literal["sticky", "random", "pinned"]


class RandomSource(Protocol):
    """Anything with ``randrange(n)`` (``random.Random`` and ``random.SystemRandom`` qualify)."""

    def randrange(self, stop: int, /) -> int: ...


class Assignment(NamedTuple):
    """Which version a request goes to, and why (``how``: sticky, random or pinned)."""

    version: str
    bucket: int | None
    how: How


_default_random = random.Random()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def split_problem(weights: Iterable[int]) -> str | None:
    """What is wrong with the sum of a split's weights (``route weights add up to 95, not 100``),
    or None when they fill the ``BUCKETS`` exactly. The one check of the sum: the catalog's
    bindings, the provider's routes and the router's table all ask it."""
    total = sum(weights)
    return None if total == BUCKETS else f"route weights add up to {total}, not {BUCKETS}"


def bucket_of(key: str, salt: str = "") -> int:
    """The bucket (0-99) of a sticky key: the first 8 bytes of sha256 of ``salt/key`` (or of ``key``
    when there is no salt), big-endian, modulo 100."""
    data = _utf8(f"{salt}/{key}" if salt else key)
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") % BUCKETS


def key_hash(key: str) -> str:
    """The loggable form of a sticky key: 32 hex digits of a domain-separated sha256."""
    return hashlib.sha256(KEY_HASH_DOMAIN + _utf8(key)).hexdigest()[:32]


def bucket_table(routes: Iterable[tuple[str, int]]) -> tuple[str, ...]:
    """The 100 slots of a split: each route's weight in consecutive buckets, in the declared order.

    Raises ``ValueError`` when a weight is not an integer in 0..100, a version repeats, or the
    weights do not add up to 100.
    """
    slots: list[str] = []
    weights: list[int] = []
    seen: set[str] = set()
    for version, weight in routes:
        if not isinstance(version, str) or not version:
            raise ValueError(f"a version is a non-empty string, not {version!r}")
        if version in seen:
            raise ValueError(f"version {version} is routed twice")
        seen.add(version)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= BUCKETS:
            raise ValueError(f"the weight of {version} is {weight!r}: it must be an integer from 0 to {BUCKETS}")
        slots.extend([version] * weight)
        weights.append(weight)
    problem = split_problem(weights)
    if problem:
        raise ValueError(problem)
    return tuple(slots)


def pick_version(
    slots: Sequence[str],
    key: str | None = None,
    *,
    salt: str = "",
    rng: RandomSource | None = None,
) -> Assignment:
    """The version for one request: by the key's bucket when there is a (non-empty) key, else by a
    uniformly random bucket drawn from ``rng``."""
    if len(slots) != BUCKETS:
        raise ValueError(f"a bucket table has {BUCKETS} slots, not {len(slots)}")
    if key:
        bucket = bucket_of(key, salt)
        return Assignment(slots[bucket], bucket, "sticky")
    bucket = (rng or _default_random).randrange(BUCKETS)
    return Assignment(slots[bucket], bucket, "random")


def bucket_ranges(slots: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
    """Each version's buckets as inclusive ranges, e.g. ``{"1.3.0": [(0, 89)], "1.4.0": [(90, 99)]}``."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    start = 0
    for i in range(1, len(slots) + 1):
        if i == len(slots) or slots[i] != slots[start]:
            ranges.setdefault(slots[start], []).append((start, i - 1))
            start = i
    return ranges


def shares(slots: Sequence[str]) -> dict[str, int]:
    """How many buckets (percent) each version owns."""
    counts: dict[str, int] = {}
    for version in slots:
        counts[version] = counts.get(version, 0) + 1
    return counts
