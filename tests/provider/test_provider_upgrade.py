"""A Terraform state written by the provider before its ``model`` blocks (``modelcat_route`` schema
0: one flat ``route`` block per version, naming its model), before the declared ``outcomes``
(schema 1), or before the ``mirror`` blocks (schema 2), and a ``modelcat_endpoint`` state from
before its signature fields, keep working: Terraform asks the provider to upgrade it, and the
upgraded state equals the configuration in the new shape.

The old state is written by hand, in the exact shape the old provider stored (attributes sorted,
an absent sticky key null, routes in configuration order, models interleaved), around the
processes a first apply started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog.provider.route import SCHEMA_VERSION
from catalog.provider.runstate import RunDir
from tests.provider.terraform_fixtures import (
    DEMO,
    FRAUD_130,
    FRAUD_140,
    Workspace,
    endpoint_block,
    errors_text,
    model_block,
    provider_block,
    route_block,
)

pytestmark = pytest.mark.slow

CHURN_110 = {
    "model": "churn-predictor",
    "version": "1.1.0",
    "digest": "sha256:8e62c94845baff7ea80fe613ecda38d66671ec07790ecb6d4b8c9b1bd06e6e18",
    "artifact": "artifacts/sha256/8e/8e62c94845baff7ea80fe613ecda38d66671ec07790ecb6d4b8c9b1bd06e6e18",
}


MIRROR = {"version": FRAUD_140["version"], "percent": 50, "max_abs_difference": 0.05}


def config(ws: Workspace, mirror: bool = False) -> dict[str, Any]:
    document = provider_block(DEMO, ws.run_dir)
    document["resource"] = {
        "modelcat_endpoint": {
            "e13": endpoint_block("fraud-130", FRAUD_130, 1),
            "e14": endpoint_block("fraud-140", FRAUD_140, 1),
            "c": endpoint_block("churn-110", CHURN_110, 1),
        },
        "modelcat_route": {
            "r": {
                "application": "checkout",
                "model": [
                    model_block("fraud-scorer", route_block(FRAUD_130, 90, "e13"), route_block(FRAUD_140, 10, "e14")),
                    model_block("churn-predictor", route_block(CHURN_110, 100, "c"), sticky_key=None),
                ],
            }
        },
    }
    if mirror:
        document["resource"]["modelcat_route"]["r"]["model"][0]["mirror"] = MIRROR
    return document


def schema_0_attributes(new: dict[str, Any], urls: dict[str, list[str]]) -> dict[str, Any]:
    """The attributes the provider of schema 0 stored for the same router, as it wrote them."""

    def route(version: dict[str, str], weight: int, sticky_key: str | None) -> dict[str, Any]:
        return {
            "digest": version["digest"],
            "model": version["model"],
            "replicas": urls[version["version"]],
            "sticky_key": sticky_key,
            "version": version["version"],
            "weight": weight,
        }

    return {
        "application": "checkout",
        "host": "127.0.0.1",
        "pid": new["pid"],
        "port": 0,
        "route": [route(FRAUD_130, 90, "x-user-id"), route(CHURN_110, 100, None), route(FRAUD_140, 10, "x-user-id")],
        "table_path": new["table_path"],
        "url": new["url"],
    }


def _instance(state: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    (resource,) = [r for r in state["resources"] if (r["type"], r["name"]) == (kind, name)]
    (instance,) = resource["instances"]
    return instance  # type: ignore[no-any-return]


def _applied(workspace: Workspace, mirror: bool = False) -> tuple[Path, dict[str, Any]]:
    """Apply the configuration; the state file and its content."""
    workspace.write_json(config(workspace, mirror))
    assert workspace.init().retcode == 0
    result = workspace.apply()
    assert result.retcode == 0, errors_text(result)
    state_file = workspace.dir / "terraform.tfstate"
    return state_file, json.loads(state_file.read_text())


def test_a_state_of_flat_routes_is_upgraded_to_model_blocks_and_plans_no_change(workspace: Workspace) -> None:
    state_file, state = _applied(workspace)
    router = _instance(state, "modelcat_route", "r")
    assert router["schema_version"] == SCHEMA_VERSION
    urls = {
        version["version"]: _instance(state, "modelcat_endpoint", name)["attributes"]["urls"]
        for version, name in ((FRAUD_130, "e13"), (FRAUD_140, "e14"), (CHURN_110, "c"))
    }
    router["attributes"] = schema_0_attributes(router["attributes"], urls)
    router["schema_version"] = 0
    state["serial"] += 1
    state_file.write_text(json.dumps(state, indent=2))

    result = workspace.tf.plan(json=True, refresh=False, out="tfplan")  # the upgraded state itself
    assert result.retcode == 0, errors_text(result)
    workspace.last_plan = workspace.tf.show("tfplan", json=True).value
    assert workspace.actions() == {}
    result = workspace.plan()  # and refreshed from the router's table
    assert result.retcode == 0, errors_text(result)
    assert workspace.actions() == {}

    assert workspace.tf.refresh().retcode == 0  # Terraform stores the state in the new shape
    upgraded = _instance(json.loads(state_file.read_text()), "modelcat_route", "r")
    assert upgraded["schema_version"] == SCHEMA_VERSION and "route" not in upgraded["attributes"]
    assert [
        (m["name"], m["sticky_key"], [r["version"] for r in m["route"]]) for m in upgraded["attributes"]["model"]
    ] == [
        ("fraud-scorer", "x-user-id", ["1.3.0", "1.4.0"]),
        ("churn-predictor", None, ["1.1.0"]),
    ]


def _stored_without_change(
    workspace: Workspace, state_file: Path, state: dict[str, Any], kind: str, name: str
) -> dict[str, Any]:
    """Store ``state``, check that the plan of the state as upgraded changes nothing, refresh; the
    instance ``kind.name`` as Terraform then stores it."""
    state["serial"] += 1
    state_file.write_text(json.dumps(state, indent=2))
    result = workspace.tf.plan(json=True, refresh=False, out="tfplan")
    assert result.retcode == 0, errors_text(result)
    workspace.last_plan = workspace.tf.show("tfplan", json=True).value
    assert workspace.actions() == {}
    assert workspace.tf.refresh().retcode == 0
    return _instance(json.loads(state_file.read_text()), kind, name)


def _upgraded_without_change(
    workspace: Workspace, state_file: Path, state: dict[str, Any], version: int
) -> dict[str, Any]:
    """Store ``state`` (its router rewritten as schema ``version`` stored it), check that the plan of
    the upgraded state changes nothing, refresh; the router's instance as Terraform then stores it."""
    _instance(state, "modelcat_route", "r")["schema_version"] = version
    upgraded = _stored_without_change(workspace, state_file, state, "modelcat_route", "r")
    assert upgraded["schema_version"] == SCHEMA_VERSION
    return upgraded


def test_a_state_without_declared_outcomes_is_upgraded_and_plans_no_change(workspace: Workspace) -> None:
    state_file, state = _applied(workspace)
    router = _instance(state, "modelcat_route", "r")
    del router["attributes"]["outcomes"]  # what the provider of schema 1 stored
    upgraded = _upgraded_without_change(workspace, state_file, state, 1)
    assert upgraded["attributes"]["outcomes"] is None


def test_a_state_without_mirror_blocks_is_upgraded_and_plans_no_change(workspace: Workspace) -> None:
    state_file, state = _applied(workspace)
    router = _instance(state, "modelcat_route", "r")
    assert [m["mirror"] for m in router["attributes"]["model"]] == [[], []]
    for model in router["attributes"]["model"]:
        del model["mirror"]  # what the provider of schema 2 stored
    upgraded = _upgraded_without_change(workspace, state_file, state, 2)
    assert [m["mirror"] for m in upgraded["attributes"]["model"]] == [[], []]


def test_a_state_from_before_grpc_is_upgraded_and_plans_no_change(workspace: Workspace) -> None:
    state_file, state = _applied(workspace)
    router = _instance(state, "modelcat_route", "r")
    assert router["attributes"]["grpc_address"]  # the provider gives every router a gRPC port
    del router["attributes"]["grpc_address"]  # what the provider of schema 3 stored
    for model in router["attributes"]["model"]:
        for route in model["route"]:
            del route["grpc_replicas"]
    upgraded = _upgraded_without_change(workspace, state_file, state, 3)
    assert [r["grpc_replicas"] for m in upgraded["attributes"]["model"] for r in m["route"]] == [None, None, None]
    record = RunDir(workspace.run_dir).read_route("checkout")
    assert record is not None and upgraded["attributes"]["grpc_address"] == record.grpc  # refreshed


def test_a_mirror_block_reaches_the_routers_table_and_plans_no_change(workspace: Workspace) -> None:
    _, state = _applied(workspace, mirror=True)
    router = _instance(state, "modelcat_route", "r")
    assert [m["mirror"] for m in router["attributes"]["model"]] == [[MIRROR], []]
    table = json.loads(Path(router["attributes"]["table_path"]).read_text())
    assert [m.get("mirror") for m in table["models"]] == [MIRROR, None]
    assert workspace.plan().retcode == 0  # refreshed from the router's table: the same mirror
    assert workspace.actions() == {}

    workspace.write_json(config(workspace))  # the shadow step ends: the mirror goes
    assert workspace.apply().retcode == 0
    table = json.loads(Path(router["attributes"]["table_path"]).read_text())
    assert [m.get("mirror") for m in table["models"]] == [None, None]


def test_an_endpoint_state_from_before_the_signature_fields_is_upgraded_and_plans_no_change(
    workspace: Workspace,
) -> None:
    state_file, state = _applied(workspace)
    endpoint = _instance(state, "modelcat_endpoint", "e13")
    assert endpoint["attributes"]["trusted_key"] == [] and endpoint["attributes"]["bundle"] is None
    for key in ("bundle", "bundle_digest", "require_signatures", "trusted_key"):
        del endpoint["attributes"][key]  # what the provider stored before replicas verified signatures
    upgraded = _stored_without_change(workspace, state_file, state, "modelcat_endpoint", "e13")["attributes"]
    assert (upgraded["bundle"], upgraded["require_signatures"], upgraded["trusted_key"]) == (None, None, [])
