"""The split through a real router: 10,000 users on a 90/10 canary, sticky, and a canary raised to 20."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.domain.routing import bucket_of
from tests.serving.router_fixtures import Fleet, digest_of, infer_all, table_document, wait_for_table, write_table

pytestmark = pytest.mark.slow

MODEL = "fraud-scorer"
STABLE, CANARY = "1.3.0", "1.4.0"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(tmp_path)
    yield f
    f.close()


def test_keyed_split_is_sticky_and_a_growing_canary_keeps_its_users(fleet: Fleet, tmp_path: Path) -> None:
    replicas = fleet.fakes(MODEL, [(STABLE, "stable-1"), (STABLE, "stable-2"), (CANARY, "canary-1")])
    stable, canary = replicas[:2], replicas[2:]
    table = tmp_path / "table.json"
    write_table(table, table_document({MODEL: [(STABLE, 90, stable), (CANARY, 10, canary)]}))
    router = fleet.router(table)

    keys = [f"user-{i}" for i in range(10_000)]
    answers = infer_all(router.url, [{"x-user-id": k} for k in keys], MODEL)
    assert Counter(a.status for a in answers) == {200: len(keys)}
    first = {k: a.version for k, a in zip(keys, answers, strict=True)}
    for a in answers:  # the headers name the version that really answered, with the table's digest
        assert a.body["model_version"] == a.version and a.digest == digest_of(a.version or "")
        assert a.replica in ({"stable-1", "stable-2"} if a.version == STABLE else {"canary-1"})
    share = sum(v == CANARY for v in first.values()) / len(keys)
    assert abs(share - 0.10) <= 0.015, share
    # the router uses the documented bucket function, salted with the model name
    assert all((bucket_of(k, MODEL) >= 90) == (v == CANARY) for k, v in first.items())
    # both stable replicas take turns
    assert min(Counter(a.replica for a in answers if a.version == STABLE).values()) > 0.4 * 0.9 * len(keys)

    again_keys = keys[::20]
    again = infer_all(router.url, [{"x-user-id": k} for k in again_keys], MODEL)
    assert [a.version for a in again] == [first[k] for k in again_keys]

    sha = write_table(table, table_document({MODEL: [(STABLE, 80, stable), (CANARY, 20, canary)]}))
    wait_for_table(router, sha)
    on_canary = [k for k in keys if first[k] == CANARY]
    sample = [k for k in keys[::20] if first[k] == STABLE]
    after = infer_all(router.url, [{"x-user-id": k} for k in on_canary + sample], MODEL)
    assert Counter(a.status for a in after) == {200: len(after)}
    assert all(a.version == CANARY for a in after[: len(on_canary)]), "a canary user was moved back to stable"
    moved = sum(a.version == CANARY for a in after[len(on_canary) :]) / len(sample)
    assert abs(moved - 10 / 90) <= 0.04, moved  # buckets 80-89 of the 90 stable ones
    assert router.terminate() == 0
