"""``modelcat smoke`` judges an observed split with an exact two-sided binomial test.

The tolerance is shown by simulation, not asserted: the share of runs in which a correct router
fails (at most ``SMOKE_ALPHA``, every route tested at once) and the share of runs in which a
router at 90 % is caught while the catalog says 80 % (and the reverse), at smoke's default request
count. Keyed requests are deterministic (a key's bucket is a hash of key and model), so a run with
the same keys always gets the same counts: what varies is how a set of keys falls on the buckets,
which the simulations draw at random and, for smoke's own keys, over many model names.
"""

from __future__ import annotations

import numpy as np
import pytest

from catalog.cli.runtime_commands import smoke
from catalog.deploy.traffic import SMOKE_ALPHA, share_tolerance, smoke_keys
from catalog.domain.routing import bucket_table, pick_version

DEFAULT_REQUESTS = next(p.default for p in smoke.params if p.name == "count")


def rejected(counts: np.ndarray, weights: tuple[int, ...], requests: int) -> np.ndarray:
    """Per simulated run (a row of counts per route), whether smoke fails it: any route outside
    its range, the level shared among the routes tested (as ``modelcat smoke`` does)."""
    tested = sum(0 < w < 100 for w in weights)
    alpha = SMOKE_ALPHA / max(1, tested)
    out = np.zeros(len(counts), dtype=bool)
    for column, weight in enumerate(weights):
        low, high = share_tolerance(requests, weight, alpha)
        out |= (counts[:, column] < low) | (counts[:, column] > high)
    return out


@pytest.mark.parametrize("weights", [(80, 20), (90, 10), (50, 50), (99, 1), (34, 33, 33), (70, 20, 10)])
def test_smoke_tolerance_fails_a_correct_split_in_at_most_alpha_of_runs(weights: tuple[int, ...]) -> None:
    runs = 40_000
    rng = np.random.default_rng(12)  # seeded: the same draws, hence the same verdict, on every run
    counts = rng.multinomial(DEFAULT_REQUESTS, np.array(weights) / 100, size=runs)  # buckets drawn uniformly
    rate = rejected(counts, weights, DEFAULT_REQUESTS).mean()
    assert rate <= SMOKE_ALPHA, f"{weights}: a correct router fails {rate:.5f} of runs"


@pytest.mark.parametrize(("catalog", "router"), [((80, 20), (90, 10)), ((90, 10), (80, 20))])
def test_smoke_tolerance_catches_an_80_90_mismatch_at_the_default_request_count(
    catalog: tuple[int, ...], router: tuple[int, ...]
) -> None:
    runs = 20_000
    rng = np.random.default_rng(13)
    counts = rng.multinomial(DEFAULT_REQUESTS, np.array(router) / 100, size=runs)
    power = rejected(counts, catalog, DEFAULT_REQUESTS).mean()
    assert power >= 0.999, f"catalog {catalog}, router {router}: caught in {power:.4f} of runs"


def keyed_counts(weights: tuple[int, ...], model: str) -> list[int]:
    """What a router splitting by ``weights`` answers to smoke's keys for ``model`` (its real hash)."""
    versions = [f"v{i}" for i in range(len(weights))]
    slots = bucket_table(zip(versions, weights, strict=True))
    picked = [pick_version(slots, key, salt=model).version for key in smoke_keys(DEFAULT_REQUESTS)]
    return [picked.count(v) for v in versions]


@pytest.mark.slow
def test_smoke_keys_are_judged_like_random_draws_over_many_models() -> None:
    models = [f"model-{i}" for i in range(600)]
    correct = np.array([keyed_counts((80, 20), m) for m in models])
    assert keyed_counts((80, 20), models[0]) == correct[0].tolist()  # the same keys, the same counts
    false_alarms = int(rejected(correct, (80, 20), DEFAULT_REQUESTS).sum())
    expected = SMOKE_ALPHA * len(models)
    assert false_alarms <= expected + 3 * expected**0.5, f"{false_alarms} of {len(models)} models fail a correct split"
    off = np.array([keyed_counts((90, 10), m) for m in models])  # the router at 90/10, the catalog at 80/20
    assert rejected(off, (80, 20), DEFAULT_REQUESTS).all()
