"""Properties of the split arithmetic: buckets are uniform and stable, canaries grow without reshuffling."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.domain.routing import (
    BUCKETS,
    bucket_of,
    bucket_ranges,
    bucket_table,
    key_hash,
    pick_version,
    shares,
)

keys = st.text(min_size=1, max_size=64)
salts = st.one_of(st.just(""), st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))


@st.composite
def splits(draw: st.DrawFn, min_routes: int = 1, max_routes: int = 5) -> list[tuple[str, int]]:
    """Routes with integer weights summing to 100 (zeros allowed)."""
    n = draw(st.integers(min_routes, max_routes))
    cuts = sorted(draw(st.lists(st.integers(0, BUCKETS), min_size=n - 1, max_size=n - 1)))
    bounds = [0, *cuts, BUCKETS]
    return [(f"1.{i}.0", bounds[i + 1] - bounds[i]) for i in range(n)]


def _chi_square(counts: list[int], expected: float) -> float:
    return sum((c - expected) ** 2 / expected for c in counts)


def test_buckets_of_10000_keys_are_uniform() -> None:
    counts = [0] * BUCKETS
    for i in range(10_000):
        counts[bucket_of(f"user-{i}")] += 1
    # 99 degrees of freedom: mean 99, sd 14; 170 is far beyond any fair hash (p < 1e-5)
    assert _chi_square(counts, 100) < 170
    assert min(counts) > 50 and max(counts) < 150


@settings(max_examples=15, deadline=None)
@given(salt=salts, prefix=st.text(max_size=8))
def test_buckets_are_uniform_for_any_salt_and_key_family(salt: str, prefix: str) -> None:
    counts = [0] * BUCKETS
    for i in range(5_000):
        counts[bucket_of(f"{prefix}{i}", salt)] += 1
    assert _chi_square(counts, 50) < 180


@given(key=keys, salt=salts)
def test_bucket_is_stable_and_in_range(key: str, salt: str) -> None:
    bucket = bucket_of(key, salt)
    assert 0 <= bucket < BUCKETS
    assert bucket == bucket_of(key, salt)
    expected = hashlib.sha256((f"{salt}/{key}" if salt else key).encode("utf-8", "surrogatepass")).digest()
    assert bucket == int.from_bytes(expected[:8], "big") % BUCKETS  # the documented formula


@given(routes=splits(), key=keys, salt=salts)
def test_a_key_always_gets_the_version_of_its_bucket(routes: list[tuple[str, int]], key: str, salt: str) -> None:
    slots = bucket_table(routes)
    first = pick_version(slots, key, salt=salt)
    assert first == pick_version(slots, key, salt=salt, rng=random.Random(1))  # randomness plays no part
    assert first.how == "sticky" and first.bucket == bucket_of(key, salt)
    assert first.version == slots[first.bucket]
    assert dict(routes)[first.version] > 0


@given(routes=splits())
def test_table_lays_weights_out_cumulatively_in_order(routes: list[tuple[str, int]]) -> None:
    slots = bucket_table(routes)
    assert len(slots) == BUCKETS
    assert shares(slots) == {v: w for v, w in routes if w}
    start = 0
    for version, weight in routes:
        assert slots[start : start + weight] == (version,) * weight
        start += weight
    assert [v for v in bucket_ranges(slots)] == [v for v, w in routes if w]


@given(w=st.integers(0, BUCKETS), w2=st.integers(0, BUCKETS))
def test_growing_the_canary_moves_no_one_off_it(w: int, w2: int) -> None:
    low, high = sorted((w, w2))
    before = bucket_table([("1.3.0", BUCKETS - low), ("1.4.0", low)])
    after = bucket_table([("1.3.0", BUCKETS - high), ("1.4.0", high)])
    for bucket in range(BUCKETS):
        if before[bucket] == "1.4.0":
            assert after[bucket] == "1.4.0"
        if after[bucket] == "1.3.0":
            assert before[bucket] == "1.3.0"  # and no one returns to stable while it grows
    moved = [b for b in range(BUCKETS) if before[b] != after[b]]
    assert moved == list(range(BUCKETS - high, BUCKETS - low))


@given(routes=splits(min_routes=2), data=st.data())
def test_the_last_route_grows_monotonically_whoever_pays(routes: list[tuple[str, int]], data: st.DataObject) -> None:
    donors = [i for i, (_, w) in enumerate(routes[:-1]) if w > 0]
    if not donors:
        return
    donor = data.draw(st.sampled_from(donors))
    amount = data.draw(st.integers(1, routes[donor][1]))
    grown = list(routes)
    grown[donor] = (routes[donor][0], routes[donor][1] - amount)
    grown[-1] = (routes[-1][0], routes[-1][1] + amount)
    before, after = bucket_table(routes), bucket_table(grown)
    last = routes[-1][0]
    assert {b for b in range(BUCKETS) if before[b] == last} < {b for b in range(BUCKETS) if after[b] == last}


@given(key=st.one_of(st.none(), keys), seed=st.integers())
def test_weights_zero_and_hundred(key: str | None, seed: int) -> None:
    slots = bucket_table([("1.3.0", 0), ("1.4.0", 100), ("1.5.0", 0)])
    assert pick_version(slots, key, rng=random.Random(seed)).version == "1.4.0"
    assert bucket_ranges(slots) == {"1.4.0": [(0, 99)]}


def test_unkeyed_requests_follow_the_weights_with_an_injected_random_source() -> None:
    slots = bucket_table([("1.3.0", 90), ("1.4.0", 10)])
    rng = random.Random(20261127)
    picks = [pick_version(slots, None, rng=rng) for _ in range(20_000)]
    assert all(p.how == "random" for p in picks)
    canary = sum(p.version == "1.4.0" for p in picks) / len(picks)
    assert abs(canary - 0.10) < 0.01  # sd 0.2 points

    class Fixed:
        def __init__(self, value: int) -> None:
            self.value = value

        def randrange(self, stop: int) -> int:
            assert stop == BUCKETS
            return self.value

    assert pick_version(slots, None, rng=Fixed(89)).version == "1.3.0"
    assert pick_version(slots, None, rng=Fixed(90)).version == "1.4.0"
    assert pick_version(slots, "", rng=Fixed(90)).how == "random"  # an empty key is no key


@given(key=keys)
def test_key_hash_is_stable_and_is_neither_the_key_nor_its_bucket_hash(key: str) -> None:
    hashed = key_hash(key)
    assert hashed == key_hash(key)
    assert len(hashed) == 32 and all(c in "0123456789abcdef" for c in hashed)
    assert hashed != key
    assert hashed != hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ([("1.3.0", 90), ("1.4.0", 5)], "add up to 95, not 100"),
        ([("1.3.0", 110), ("1.4.0", -10)], "must be an integer from 0 to 100"),
        ([("1.3.0", 90.0), ("1.4.0", 10)], "must be an integer"),
        ([("1.3.0", True), ("1.4.0", 99)], "must be an integer"),
        ([("1.3.0", 50), ("1.3.0", 50)], "routed twice"),
        ([], "add up to 0"),
        ([("", 100)], "non-empty string"),
    ],
)
def test_bad_splits_are_refused(routes: list[tuple[str, int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bucket_table(routes)


def test_pick_version_wants_a_full_table() -> None:
    with pytest.raises(ValueError, match="100 slots"):
        pick_version(("1.0.0",) * 99, "k")
