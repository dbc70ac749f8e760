"""The fast switch (catalog/rollout/switch.py). The slow tests run on a real local stack:
checkout's fraud-scorer 1.3.0 = 90 / 1.4.0 = 10, applied once by the embedded Terraform and shared
by the tests, each of which starts from what the catalog says (``converged``)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalog.layout import run_dir, state_root
from catalog.provider.processes import start_time_of
from catalog.provider.route import table_bytes
from catalog.provider.runstate import RouteRecord, RunDir
from catalog.rollout.switch import SwitchResult, switch_routes
from tests.deploy.project import ClientLoop, Project, output
from tests.serving.router_fixtures import Fleet, digest_of, logged_assignments


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project.create(tmp_path_factory.mktemp("switch"))
    try:
        project.ok("apply", "--auto-approve")
        yield project
    finally:
        project.cleanup()


@pytest.fixture
def converged(stack: Project) -> Project:
    stack.bind(**{"1.3.0": 90, "1.4.0": 10})
    stack.converge()
    return stack


def switch(project: Project, *routes: tuple[str, int]) -> SwitchResult:
    return switch_routes(project.catalog, "checkout", "fraud-scorer", routes, environment="production")


def weights_in_force(project: Project) -> dict[str, int]:
    routing = httpx.get(f"{project.route().url}/routing", trust_env=False).json()
    [model] = routing["models"]
    return {route["version"]: route["weight"] for route in model["routes"]}


@pytest.mark.slow
def test_switch_puts_the_weights_in_force_and_the_router_log_shows_it(converged: Project) -> None:
    route = converged.route()
    with ClientLoop(route.url) as loop:
        loop.wait_for(50)
        result = switch(converged, ("1.3.0", 100))
        assert result.switched, result.reason
        switched_at = time.monotonic()  # a request sent before may still finish under the old table
        loop.wait_for(100)
    assert not loop.failures, loop.failures[:5]
    assert result.routes == (("1.3.0", 100), ("1.4.0", 0))
    assert result.table_sha256 == hashlib.sha256(Path(route.table).read_bytes()).hexdigest()
    assert weights_in_force(converged) == {"1.3.0": 100, "1.4.0": 0}
    assert {version for version, _ in loop.answered_after(switched_at)} == {"1.3.0"}
    logged = logged_assignments(Path(route.analytics_dir), "checkout")
    under_new_table = [line for line in logged if line["table"] == result.table_sha256]
    assert under_new_table, "the router logged no request under the switched table"
    assert {line["version"] for line in under_new_table} == {"1.3.0"}
    assert {line["version"] for line in logged if line["table"] != result.table_sha256} == {"1.3.0", "1.4.0"}


@pytest.mark.slow
def test_switch_refuses_a_version_the_router_has_no_replicas_of(converged: Project) -> None:
    route = converged.route()
    before = Path(route.table).read_bytes()
    result = switch(converged, ("1.3.0", 50), ("1.5.0", 50))
    assert not result.switched
    assert "no replicas of fraud-scorer 1.5.0 run yet" in result.reason
    assert Path(route.table).read_bytes() == before
    assert weights_in_force(converged) == {"1.3.0": 90, "1.4.0": 10}


@pytest.mark.slow
def test_switch_then_a_plan_of_the_catalog_with_the_same_routes_changes_nothing(converged: Project) -> None:
    result = switch(converged, ("1.3.0", 50), ("1.4.0", 50))
    assert result.switched, result.reason
    converged.bind(**{"1.3.0": 50, "1.4.0": 50})
    plan = converged.run("plan", "--detailed-exitcode")
    assert plan.returncode == 0, output(plan)
    assert converged.run("status").returncode == 0


@pytest.mark.slow
def test_switch_then_apply_of_the_committed_abort_leaves_status_consistent(converged: Project) -> None:
    result = switch(converged, ("1.3.0", 100))
    assert result.switched, result.reason
    converged.bind(**{"1.3.0": 100})  # the abort's commit: the base routes, without the candidate
    converged.ok("apply", "--auto-approve")
    status = converged.status()
    assert status["consistent"] and status["drift"] == [], status["drift"]
    assert weights_in_force(converged) == {"1.3.0": 100}


def test_switch_leaves_a_catalog_nothing_was_applied_of_to_terraform(workspace: Path) -> None:
    result = switch_routes(
        workspace / "models.yaml", "checkout", "fraud-scorer", [("1.3.0", 100)], environment="production"
    )
    assert not result.switched
    assert result.reason == "no router of checkout runs in production-local"


def test_switch_leaves_other_targets_to_ci(workspace: Path) -> None:
    result = switch_routes(
        workspace / "models.yaml",
        "checkout",
        "fraud-scorer",
        [("1.3.0", 100)],
        environment="production",
        target="kubernetes",
    )
    assert not result.switched
    assert "kubernetes target has no fast switch" in result.reason


def fraud_and_rank(weights: dict[str, int], mirror: dict[str, object] | None = None) -> list[dict[str, object]]:
    """Two models' blocks as the provider's state holds them: fraud-scorer with ``weights`` (and
    ``mirror``), ranker as is."""

    def route(version: str, weight: int, port: int) -> dict[str, object]:
        return {
            "version": version,
            "weight": weight,
            "digest": digest_of(version),
            "replicas": [f"http://127.0.0.1:{port}"],
        }

    fraud = [route(v, w, 9100 + int(v.split(".")[1])) for v, w in weights.items()]  # a port per version
    return [
        {"name": "fraud-scorer", "sticky_key": "x-user-id", "route": fraud, "mirror": mirror},
        {"name": "ranker", "sticky_key": None, "route": [route("2.0.0", 100, 9200)]},
    ]


OUTCOMES = {"is_fraud": "label"}
SHADOW = {"version": "1.4.0", "percent": 20, "max_abs_difference": 0.05}


@pytest.fixture
def router_table(tmp_path: Path) -> Iterator[Callable[[list[dict[str, object]]], Path]]:
    """A router (no Terraform) of checkout on the table the provider's ``table_bytes`` writes of
    the blocks given, on record in production-local's run directory beside ``tmp_path/models.yaml``."""
    fleet = Fleet(tmp_path)

    def start(blocks: list[dict[str, object]]) -> Path:
        records = RunDir(run_dir(state_root(tmp_path / "models.yaml"), "production-local"))
        table = records.table_file("checkout")
        table.parent.mkdir(parents=True)
        table.write_bytes(table_bytes("checkout", blocks, OUTCOMES))
        router = fleet.router(table)
        start = start_time_of(router.proc.pid)
        assert start is not None
        log = str(router.stderr_path)
        records.write_route(RouteRecord("checkout", router.url, router.proc.pid, start, str(table), "", log))
        return table

    yield start
    fleet.close()


def switch_checkout(tmp_path: Path, *routes: tuple[str, int], **options: Any) -> SwitchResult:
    catalog = tmp_path / "models.yaml"
    return switch_routes(catalog, "checkout", "fraud-scorer", routes, environment="production", **options)


def in_force(table: Path) -> str:
    record = RunDir(table.parent.parent).read_route("checkout")
    assert record is not None
    return httpx.get(f"{record.url}/routing", trust_env=False).json()["table"]["sha256"]


def test_switch_writes_the_table_the_provider_would_write(tmp_path: Path, router_table) -> None:
    """Two models, an outcome, a sticky key: the switch leaves exactly what the provider writes for
    the new weights, the routes in the order given."""
    table = router_table(fraud_and_rank({"1.3.0": 90, "1.4.0": 10}))
    result = switch_checkout(tmp_path, ("1.4.0", 60), ("1.3.0", 40))
    assert result.switched, result.reason
    expected = table_bytes("checkout", fraud_and_rank({"1.4.0": 60, "1.3.0": 40}), OUTCOMES)
    assert table.read_bytes() == expected
    assert result.table_sha256 == hashlib.sha256(expected).hexdigest() == in_force(table)


def test_switch_keeps_the_shadow_step_unless_told_and_ends_it_when_told(tmp_path: Path, router_table) -> None:
    table = router_table(fraud_and_rank({"1.3.0": 100, "1.4.0": 0}, SHADOW))
    kept = switch_checkout(tmp_path, ("1.3.0", 100))
    assert kept.switched and kept.mirror == ("1.4.0", 20)
    assert table.read_bytes() == table_bytes("checkout", fraud_and_rank({"1.3.0": 100, "1.4.0": 0}, SHADOW), OUTCOMES)
    wider = switch_checkout(tmp_path, ("1.3.0", 100), mirror=("1.4.0", 50))
    assert wider.switched and wider.mirror == ("1.4.0", 50)
    ended = switch_checkout(tmp_path, ("1.3.0", 90), ("1.4.0", 10), mirror=None)  # step 1: the mirror goes
    assert ended.switched and ended.mirror is None
    expected = table_bytes("checkout", fraud_and_rank({"1.3.0": 90, "1.4.0": 10}), OUTCOMES)
    assert table.read_bytes() == expected
    assert in_force(table) == hashlib.sha256(expected).hexdigest()


def test_switch_refuses_to_start_a_mirror(tmp_path: Path, router_table) -> None:
    table = router_table(fraud_and_rank({"1.3.0": 100, "1.4.0": 0}))
    before = table.read_bytes()
    result = switch_checkout(tmp_path, ("1.3.0", 100), mirror=("1.4.0", 20))
    assert not result.switched
    assert result.reason == "the running table mirrors no fraud-scorer 1.4.0: an apply starts the mirror"
    assert table.read_bytes() == before
