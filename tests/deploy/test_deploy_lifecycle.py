"""End to end through the ``modelcat`` command line (issue #5): apply, status, smoke, plan, drift
and healing, catalog changes under live traffic, saved plans, destroy.

One project is applied once and shared by the tests, in order; each starts from what runs matching
the catalog as the previous test left it, so any test also runs alone.
"""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from catalog.provider.processes import ProcessId, is_alive, port_is_free
from tests.deploy.project import ClientLoop, Project, output
from tests.onnx_models import dense_model, save

pytestmark = pytest.mark.slow

OLD_140 = "sha256:344eb462ff67b4412ea59c01ab3b175619c097825114981a233597eaa0c8575b"


def checkout(status: dict[str, Any]) -> dict[str, Any]:
    [app] = [a for a in status["applications"] if a["name"] == "checkout"]
    return app


def endpoint(status: dict[str, Any], version: str) -> dict[str, Any]:
    [found] = [e for e in checkout(status)["endpoints"] if e["version"] == version and not e["deposed"]]
    return found


def pids(status: dict[str, Any], version: str) -> list[int]:
    return [r["pid"] for r in endpoint(status, version)["replicas"]]


def observed(smoke: dict[str, Any]) -> dict[str, float]:
    return {row["version"]: row["observed"] for row in smoke["rows"] if row["application"] == "checkout"}


def assert_smoke(project: Project, weights: dict[str, int], tolerance: float, protocol: str = "http") -> dict[str, Any]:
    smoke = project.json("smoke", "--requests", "200", "--protocol", protocol)
    assert smoke["ok"], smoke
    assert all(row["requests"] == 200 and not row["failures"] and not row["mismatches"] for row in smoke["rows"])
    shares = observed(smoke)
    assert shares.keys() == weights.keys(), smoke
    for version, weight in weights.items():
        assert abs(shares[version] - weight) <= tolerance, f"{version}: {shares[version]} % observed, {weight} % wanted"
    return smoke


def assert_consistent(status: dict[str, Any], weights: dict[str, int]) -> None:
    assert status["consistent"] and status["drift"] == [], status["drift"]
    app = checkout(status)
    assert app["router_alive"] and app["consistent"]
    assert app["weights_in_force"] == app["weights_in_catalog"] == {"fraud-scorer": weights}
    for version in weights:
        replicas = endpoint(status, version)["replicas"]
        assert len(replicas) == endpoint(status, version)["replicas_wanted"] == 2
        assert all(r["alive"] and r["ready"] and r["healthy"] for r in replicas), replicas
    assert not [e for e in app["endpoints"] if e["deposed"]], "an old endpoint is still draining"


def test_apply_then_plan_has_no_changes_status_is_consistent_and_smoke_splits_by_weight(converged: Project) -> None:
    applied = converged.first_apply
    assert applied is not None and applied.returncode == 0, output(applied)
    assert "production-local: 4 added, 0 changed, 0 destroyed" in applied.stdout, output(applied)

    plan = converged.json("plan")
    assert [s["stack"] for s in plan["stacks"]] == ["production-local"]
    for stack in plan["stacks"]:
        assert (stack["has_changes"], stack["changes"], stack["drift"]) == (False, [], []), stack

    text = converged.run("status")
    assert text.returncode == 0, output(text)
    assert text.stdout.rstrip().endswith("verdict: consistent"), output(text)
    assert_consistent(converged.status(), {"1.3.0": 90, "1.4.0": 10})

    assert_smoke(converged, {"1.3.0": 90, "1.4.0": 10}, tolerance=6)


def test_status_shows_where_the_router_serves_grpc(converged: Project) -> None:
    route = converged.route()
    assert re.fullmatch(r"127\.0\.0\.1:\d+", route.grpc), route
    assert checkout(converged.status())["grpc"] == route.grpc
    text = converged.run("status")
    assert f"{route.url} (gRPC {route.grpc}) " in text.stdout, output(text)


def test_smoke_over_grpc_splits_as_over_http_with_the_sticky_key_in_the_metadata(converged: Project) -> None:
    over_grpc = assert_smoke(converged, {"1.3.0": 90, "1.4.0": 10}, tolerance=6, protocol="grpc")
    over_http = assert_smoke(converged, {"1.3.0": 90, "1.4.0": 10}, tolerance=6)
    assert observed(over_grpc) == observed(over_http)  # the same keys land on the same versions


def test_apply_starts_a_prometheus_that_scrapes_the_router_and_every_replica(converged: Project) -> None:
    [stack] = converged.status()["stacks"]
    prometheus = stack["prometheus"]
    assert prometheus is not None and prometheus["alive"], stack
    [record] = converged.prometheus_records()
    assert (record.url, record.pid, record.retention) == (prometheus["url"], prometheus["pid"], "2d")
    assert urlsplit(record.url).hostname == "127.0.0.1"
    wanted = {("router", url) for url in [converged.route().url]}
    wanted |= {("replica", i.url) for r in converged.endpoint_records() for i in r.instances}
    deadline, up = time.monotonic() + 120, set()
    while time.monotonic() < deadline:  # file_sd picks the targets up, then one scrape each (every 5 s)
        targets = httpx.get(f"{record.url}/api/v1/targets", timeout=5, trust_env=False).json()["data"]
        up = {(t["labels"]["role"], t["scrapeUrl"].removesuffix("/metrics")) for t in targets["activeTargets"]
              if t["health"] == "up" and t["labels"].get("application") == "checkout"}  # fmt: skip
        if up == wanted:
            break
        time.sleep(0.5)
    assert up == wanted and len(wanted) == 5, (up, wanted)


def test_a_killed_replica_is_drift_that_plan_shows_and_apply_heals(converged: Project) -> None:
    before = converged.status()
    router = converged.route()
    victim = endpoint(before, "1.3.0")["replicas"][0]
    survivor = endpoint(before, "1.3.0")["replicas"][1]
    [ident] = [i.ident for r in converged.endpoint_records() for i in r.instances if i.pid == victim["pid"]]
    assert is_alive(ident)
    os.kill(ident.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_alive(ident):
        assert time.monotonic() < deadline, f"replica {ident} survived SIGKILL"
        time.sleep(0.05)

    drifted = converged.status(codes=(1,))
    assert not drifted["consistent"]
    named = [d for d in drifted["drift"] if victim["url"] in d and f"pid {victim['pid']}" in d]
    assert named, drifted["drift"]
    assert converged.run("status").returncode == 1

    [stack] = converged.json("plan")["stacks"]
    subject = "checkout: fraud-scorer 1.3.0 endpoint"
    assert {"action": "update", "subject": subject, "detail": "replicas 2 -> 1"} in [
        {k: d[k] for k in ("action", "subject", "detail")} for d in stack["drift"]
    ], stack
    assert {"action": "update", "subject": subject, "detail": "replicas 1 -> 2"} in [
        {k: c[k] for k in ("action", "subject", "detail")} for c in stack["changes"]
    ], stack
    assert {c["action"] for c in stack["changes"]} == {"update"}, stack  # nothing replaced or removed

    healed = converged.ok("apply", "--auto-approve")
    assert "production-local: 0 added, 2 changed, 0 destroyed" in healed.stdout, output(healed)
    after = converged.status()
    assert_consistent(after, checkout(before)["weights_in_catalog"]["fraud-scorer"])
    now = pids(after, "1.3.0")
    assert victim["pid"] not in now and survivor["pid"] in now and len(now) == 2  # one new replica
    assert pids(after, "1.4.0") == pids(before, "1.4.0")
    assert converged.route().ident == router.ident  # the router was not restarted


def test_reweighting_under_load_keeps_the_router_and_fails_no_request(converged: Project) -> None:
    router = converged.route()
    replicas = {v: pids(converged.status(), v) for v in ("1.3.0", "1.4.0")}
    converged.bind(**{"1.3.0": 50, "1.4.0": 50})
    with ClientLoop(router.url) as loop:
        loop.wait_for(50)
        applied = converged.run("apply", "--auto-approve")
        loop.wait_for(50)
    assert applied.returncode == 0, output(applied)
    assert "0 added, 1 changed, 0 destroyed" in applied.stdout, output(applied)  # the route only
    assert not loop.failures, loop.failures[:10]
    assert len(loop.answers) >= 100

    assert converged.route().ident == router.ident and is_alive(router.ident)  # not restarted
    status = converged.status()
    assert_consistent(status, {"1.3.0": 50, "1.4.0": 50})
    assert {v: pids(status, v) for v in replicas} == replicas  # no replica restarted either
    assert_smoke(converged, {"1.3.0": 50, "1.4.0": 50}, tolerance=10)


def test_new_bytes_for_a_version_replace_its_endpoint_under_load_without_a_failed_request(
    converged: Project, tmp_path: Any
) -> None:
    """create_before_destroy: the new replicas run and the route points at them before the old stop."""
    router = converged.route()
    before = converged.status()
    old = [i.ident for r in converged.endpoint_records() if r.version == "1.4.0" for i in r.instances]
    weights = checkout(before)["weights_in_catalog"]["fraud-scorer"]
    new_digest = converged.replace_artifact("1.4.0", save(dense_model(seed=1405), tmp_path / "retrained.onnx"))
    assert new_digest != endpoint(before, "1.4.0")["digest"]

    [stack] = converged.json("plan")["stacks"]
    replaced = [c for c in stack["changes"] if c["subject"] == "checkout: fraud-scorer 1.4.0 endpoint"]
    assert [c["action"] for c in replaced] == ["replace"], stack
    assert new_digest[:19] in replaced[0]["detail"], replaced

    with ClientLoop(router.url) as loop:
        loop.wait_for(50)
        applied = converged.run("apply", "--auto-approve")
        done = time.monotonic()
        loop.wait_for(100)
    assert applied.returncode == 0, output(applied)
    assert "1 added, 1 changed, 1 destroyed" in applied.stdout, output(applied)
    assert not loop.failures, loop.failures[:10]

    after = list(loop.answered_after(done))
    assert {d for v, d in after if v == "1.4.0"} <= {new_digest}, "an answer from the old bytes after the apply"
    assert {d for v, d in after if v == "1.3.0"} == {endpoint(before, "1.3.0")["digest"]}
    served = {d for v, d in loop.answered_after(0) if v == "1.4.0"}
    assert new_digest in served, "the new bytes never answered under load"

    status = converged.status()
    assert_consistent(status, weights)
    assert {r["digest"] for r in endpoint(status, "1.4.0")["replicas"]} == {new_digest}
    assert not any(is_alive(ident) for ident in old), "a replica of the old bytes still runs"
    assert converged.route().ident == router.ident
    assert_smoke(converged, weights, tolerance=10)


def test_routing_to_another_version_under_load_fails_no_request(converged: Project) -> None:
    """1.4.0 leaves the route and 1.2.0 comes in: a new endpoint, the route, then the old one goes."""
    router = converged.route()
    old = [i.ident for r in converged.endpoint_records() if r.version == "1.4.0" for i in r.instances]
    converged.bind(**{"1.3.0": 90, "1.2.0": 10})
    [stack] = converged.json("plan")["stacks"]
    actions = {c["subject"]: c["action"] for c in stack["changes"]}
    assert actions == {
        "checkout: fraud-scorer 1.2.0 endpoint": "create",
        "checkout: router": "update",
        "checkout: fraud-scorer 1.4.0 endpoint": "delete",
    }, stack

    with ClientLoop(router.url) as loop:
        loop.wait_for(50)
        applied = converged.run("apply", "--auto-approve")
        done = time.monotonic()
        loop.wait_for(100)
    assert applied.returncode == 0, output(applied)
    assert not loop.failures, loop.failures[:10]
    assert {v for v, _ in loop.answered_after(done)} <= {"1.3.0", "1.2.0"}
    assert "1.2.0" in {v for v, _ in loop.answered_after(0)}

    assert_consistent(converged.status(), {"1.3.0": 90, "1.2.0": 10})
    assert not any(is_alive(ident) for ident in old)
    assert converged.route().ident == router.ident
    assert_smoke(converged, {"1.3.0": 90, "1.2.0": 10}, tolerance=6)


def test_a_saved_plan_is_refused_once_the_catalog_changed_and_applied_when_not(converged: Project) -> None:
    in_force = checkout(converged.status())["weights_in_force"]
    versions = list(in_force["fraud-scorer"])

    converged.bind(**dict(zip(versions, (80, 20), strict=True)))
    saved = converged.ok("plan", "--env", "production", "--out", "plan.tfplan")
    assert (converged.dir / "plan.tfplan").is_file(), output(saved)
    converged.bind(**dict(zip(versions, (70, 30), strict=True)))  # the catalog moves on
    stale = converged.run("apply", "plan.tfplan")
    assert stale.returncode != 0, output(stale)
    assert "plan again" in stale.stderr and "another configuration" in stale.stderr, output(stale)
    assert checkout(converged.status(codes=(1,)))["weights_in_force"] == in_force  # nothing applied

    converged.ok("plan", "--env", "production", "--out", "plan.tfplan")
    applied = converged.ok("apply", "plan.tfplan")
    assert "production-local: 0 added, 1 changed, 0 destroyed" in applied.stdout, output(applied)
    assert_consistent(converged.status(), dict(zip(versions, (70, 30), strict=True)))


def test_destroy_leaves_no_process_and_frees_every_port(converged: Project) -> None:
    recorded = converged.recorded()
    assert len(recorded) == 6, recorded  # 2 x 2 replicas, the router and Prometheus
    destroyed = converged.ok("destroy", "--auto-approve")
    assert "production-local: 4 destroyed" in destroyed.stdout, output(destroyed)

    alive: list[ProcessId] = [ident for ident, _ in recorded if is_alive(ident)]
    assert not alive, alive
    busy = [url for _, url in recorded if not port_is_free(urlsplit(url).hostname or "", urlsplit(url).port or 0)]
    assert not busy, busy
    assert not converged.serving(), converged.serving()
    assert converged.recorded() == []
    assert converged.ok("destroy", "--auto-approve").stdout.splitlines()[-1] == "nothing to destroy"
