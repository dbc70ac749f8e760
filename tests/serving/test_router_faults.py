"""Faults and changes under load: a replica killed, a version with no replica left, tables swapped."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.domain.routing import bucket_of
from tests.serving.router_fixtures import (
    Fleet,
    SteadyLoad,
    infer_all,
    metric,
    table_document,
    wait_for_reload_error,
    wait_for_table,
    write_table,
)

pytestmark = pytest.mark.slow

MODEL = "ranker"
OLD, NEW = "2.0.0", "2.1.0"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(tmp_path)
    yield f
    f.close()


def test_a_killed_replica_costs_no_request_and_a_dead_version_is_never_replaced(fleet: Fleet, tmp_path: Path) -> None:
    olds = fleet.fakes(MODEL, [(OLD, "old-1"), (OLD, "old-2"), (OLD, "old-3"), (NEW, "new-1")])
    old, (new,) = olds[:3], olds[3:]
    table = tmp_path / "table.json"
    write_table(table, table_document({MODEL: [(OLD, 100, old), (NEW, 0, [new])]}))
    router = fleet.router(table)
    victim = old[1]

    with SteadyLoad(router.url, MODEL, workers=4) as load:
        load.wait_for(60)
        victim.kill()
        killed_at = time.monotonic()
        load.wait_for(240)
    assert load.errors == []
    assert Counter(a.status for a in load.answers) == {200: len(load.answers)}
    assert {a.version for a in load.answers} == {OLD}
    late = [a for a in load.answers if a.sent_at > killed_at + 0.05]
    assert late and victim.name not in {a.replica for a in late}
    assert {a.replica for a in late} == {"old-1", "old-3"}
    assert metric(router, "modelcat_router_upstream_errors_total", model=MODEL, version=OLD) >= 1
    assert metric(router, "modelcat_router_retries_total", model=MODEL, version=OLD) >= 1
    assert "is unusable" in router.stderr() and victim.url in router.stderr()

    # Now half the users go to NEW, whose only replica dies: they get 503, never an OLD answer.
    sha = write_table(table, table_document({MODEL: [(OLD, 50, old), (NEW, 50, [new])]}))
    wait_for_table(router, sha)
    new.kill()
    served_before = sum(r.stats()["infer"] for r in (old[0], old[2]))
    keys = [f"user-{i}" for i in range(300)]
    answers = infer_all(router.url, [{"x-user-id": k} for k in keys], MODEL)
    for key, answer in zip(keys, answers, strict=True):
        if bucket_of(key, MODEL) >= 50:
            assert answer.status == 503 and answer.version == NEW, answer
            assert answer.replica is None  # the router answered: no replica did
            assert NEW in answer.body["error"] and MODEL in answer.body["error"]
            assert (answer.body["model"], answer.body["version"]) == (MODEL, NEW)
        else:
            assert answer.status == 200 and answer.version == OLD, answer
    ok = sum(a.status == 200 for a in answers)
    assert 0 < ok < len(keys)
    served_after = sum(r.stats()["infer"] for r in (old[0], old[2]))
    assert served_after - served_before == ok  # not one NEW request went to an OLD replica
    pinned = infer_all(router.url, [{}], MODEL, path=f"/v2/models/{MODEL}/versions/{NEW}/infer")[0]
    assert pinned.status == 503 and "is reachable" in pinned.body["error"]
    assert metric(router, "modelcat_router_requests_total", model=MODEL, version=NEW, code="503") == len(keys) - ok + 1
    assert router.terminate() == 0


def test_tables_swap_under_load_without_a_failed_request(fleet: Fleet, tmp_path: Path) -> None:
    fakes = fleet.fakes(MODEL, [(OLD, "old-1"), (NEW, "new-1")])
    old, new = fakes[:1], fakes[1:]
    table = tmp_path / "table.json"
    write_table(table, table_document({MODEL: [(OLD, 100, old), (NEW, 0, new)]}))
    router = fleet.router(table)

    with SteadyLoad(router.url, MODEL, workers=4) as load:
        load.wait_for(50)
        written = time.monotonic()
        sha = write_table(table, table_document({MODEL: [(OLD, 0, old), (NEW, 100, new)]}))
        wait_for_table(router, sha)
        seen = time.monotonic()
        load.wait_for(80)

        # A broken table (bad weights and a typo) is refused; the one in force stays.
        broken = table_document({MODEL: [(OLD, 60, old), (NEW, 30, new)]})
        broken["models"][0]["sticky_kee"] = "x-user-id"
        write_table(table, broken)
        refused = wait_for_reload_error(router, "sticky_kee")
        assert refused["table"]["sha256"] == sha
        assert "sticky_kee" in refused["table"]["last_error"]
        load.wait_for(80)
        write_table(table, "{ not json")
        wait_for_reload_error(router, "not valid JSON")
        load.wait_for(40)

        half_written = time.monotonic()
        half = write_table(table, table_document({MODEL: [(OLD, 50, old), (NEW, 50, new)]}))
        routing = wait_for_table(router, half)
        assert routing["table"]["last_error"] is None
        halved = time.monotonic()
        load.wait_for(400)
    assert load.errors == []
    assert Counter(a.status for a in load.answers) == {200: len(load.answers)}
    assert {a.version for a in load.answers if a.sent_at < written} == {OLD}
    # Between the new table being seen in force and the next good table being written, only the
    # refused tables were written: every request sent then went to NEW. The window is delimited by
    # events (the router reporting the table, the test writing the next one), never by a duration.
    in_force = [a.version for a in load.answers if seen < a.sent_at < half_written]
    assert len(in_force) >= 150 and set(in_force) == {NEW}
    last = [a.version for a in load.answers if a.sent_at > halved]
    assert len(last) >= 300 and 0.35 < last.count(OLD) / len(last) < 0.65

    assert routing["table"]["generation"] == 3
    assert [(r["version"], r["weight"]) for r in routing["models"][0]["routes"]] == [(OLD, 50), (NEW, 50)]
    assert metric(router, "modelcat_router_table_reloads_total", result="error") >= 2
    assert metric(router, "modelcat_router_table_reloads_total", result="ok") == 3
    assert metric(router, "modelcat_router_route_weight", model=MODEL, version=NEW) == 50
    log = router.stderr()
    assert "refused, the previous table stays in force" in log and "sticky_kee" in log and "not valid JSON" in log
    assert "generation 3" in log


def test_a_table_deleted_or_unreadable_keeps_the_one_in_force(fleet: Fleet, tmp_path: Path) -> None:
    (fake,) = fleet.fakes(MODEL, [(OLD, "old-1")])
    table = tmp_path / "table.json"
    sha = write_table(table, table_document({MODEL: [(OLD, 100, [fake])]}))
    router = fleet.router(table)
    table.unlink()
    routing = wait_for_reload_error(router)
    assert routing["table"]["sha256"] == sha and "cannot read" in routing["table"]["last_error"]
    assert infer_all(router.url, [{}], MODEL)[0].status == 200
    same = write_table(table, json.dumps(table_document({MODEL: [(OLD, 100, [fake])]}), indent=2))
    assert same == sha
    deadline = time.monotonic() + 10
    while router.get("/routing")["table"]["last_error"] and time.monotonic() < deadline:
        time.sleep(0.05)
    routing = router.get("/routing")
    assert routing["table"]["last_error"] is None and routing["table"]["generation"] == 1
