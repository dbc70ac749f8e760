"""The ``modelcat_route`` body: its ``model`` blocks are the routing table, its weights integers
whose sum is checked before the plan, and a state of schema 0 (flat routes) is upgraded (with no
declared outcomes, which schema 2 added, no mirror, which schema 3 added, and no gRPC, which schema 4
added)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tf.iface import UpgradeContext
from tf.types import Unknown
from tf.utils import Diagnostics

from catalog.domain.bodies import RouterBody
from catalog.errors import RoutingTableInvalid
from catalog.provider.config import ProviderConfig
from catalog.provider.route import RouteResource, state_models, table_bytes
from catalog.serving.table import API_VERSION, model_blocks, parse_table

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def _model(name: str, *weights: Any, sticky_key: str | None = None, grpc: bool = False) -> dict[str, Any]:
    routes = [
        {"version": f"1.{i}.0", "weight": w, "digest": d, "replicas": [f"http://127.0.0.1:{8001 + i}"],
         "grpc_replicas": [f"127.0.0.1:{9001 + i}"] if grpc else None}
        for i, (w, d) in enumerate(zip(weights, (A, B, C), strict=False))
    ]  # fmt: skip
    return {"name": name, "sticky_key": sticky_key, "route": routes, "mirror": None}


def _table_routes(model: dict[str, Any]) -> list[dict[str, Any]]:
    """A model block's routes as the table file writes them: no ``grpc_replicas`` where there are none."""
    return [{k: v for k, v in route.items() if v is not None or k != "grpc_replicas"} for route in model["route"]]


def _errors(config: dict[str, Any]) -> list[tuple[str, Any]]:
    diags = Diagnostics()
    RouteResource(ProviderConfig()).validate(diags, "modelcat_route", config)
    return [(d.summary, d.path) for d in diags.diagnostics if d.severity == "error"]


def test_the_schema_is_the_router_body_with_model_blocks_holding_route_blocks() -> None:
    schema = RouteResource.get_schema()
    assert schema.version == 4  # 0: flat routes; 1: model blocks; 2: declared outcomes; 3: mirror; 4: gRPC
    assert {a.name for a in schema.attributes} == {
        "application",
        "host",
        "port",
        "outcomes",
        "url",
        "grpc_address",
        "pid",
        "table_path",
    }
    (model,) = schema.block_types
    assert (model.type_name, [a.name for a in model.block.attributes]) == ("model", ["name", "sticky_key"])
    route, mirror = model.block.block_types
    assert (route.type_name, [a.name for a in route.block.attributes], route.max_items) == (
        "route",
        ["version", "weight", "digest", "replicas", "grpc_replicas"],
        None,
    )
    assert (mirror.type_name, [a.name for a in mirror.block.attributes], mirror.max_items) == (
        "mirror",
        ["version", "percent", "max_abs_difference"],
        1,
    )
    assert RouterBody.replaced_by == ("application", "port", "host")


def test_a_fractional_weight_is_refused_when_the_configuration_is_validated() -> None:
    errors = _errors({"application": "checkout", "model": [_model("fraud-scorer", 87.5, 12.5)]})
    assert errors == [
        (
            "modelcat_route: the weight of fraud-scorer 1.0.0 is 87.5: it must be an integer from 0 to 100",
            ["model", (0,), "route", (0,), "weight"],
        ),
        (
            "modelcat_route: the weight of fraud-scorer 1.1.0 is 12.5: it must be an integer from 0 to 100",
            ["model", (0,), "route", (1,), "weight"],
        ),
    ]


def test_a_models_weights_must_sum_to_the_buckets_when_validated() -> None:
    config = {"application": "checkout", "model": [_model("fraud-scorer", 90, 10), _model("recommender", 90, 5)]}
    assert _errors(config) == [
        ("modelcat_route: model 'recommender': route weights add up to 95, not 100", ["model", (1,), "route"])
    ]
    assert _errors({"application": "checkout", "model": [_model("fraud-scorer", 90.0, 10)]}) == []  # 90.0 is 90


def test_unknown_weights_are_left_for_the_apply() -> None:
    assert _errors({"application": "checkout", "model": [_model("fraud-scorer", Unknown, 10)]}) == []
    assert _errors({"application": "checkout", "model": Unknown}) == []


def test_the_table_file_is_the_model_blocks() -> None:
    models = [_model("fraud-scorer", 90, 10, sticky_key="x-user-id", grpc=True), _model("recommender", 100)]
    data = table_bytes("checkout", models)
    assert json.loads(data) == {
        "apiVersion": API_VERSION,
        "application": "checkout",
        "models": [
            {"name": "fraud-scorer", "routes": _table_routes(models[0]), "sticky_key": "x-user-id"},
            {"name": "recommender", "routes": _table_routes(models[1])},
        ],
    }
    assert json.loads(data)["models"][0]["routes"][1]["grpc_replicas"] == ["127.0.0.1:9002"]
    assert model_blocks(parse_table(data)) == models


def test_a_schema_0_state_of_flat_routes_is_upgraded_to_model_blocks() -> None:
    def flat(model: str, version: str, weight: int, digest: str, sticky_key: str | None) -> dict[str, Any]:
        replicas = [f"http://127.0.0.1:{weight + 8000}"]
        return {
            "digest": digest,
            "model": model,
            "replicas": replicas,
            "sticky_key": sticky_key,
            "version": version,
            "weight": weight,
        }

    old = {  # as the provider of schema 0 stored it (attributes of its raw JSON state)
        "application": "checkout",
        "host": "127.0.0.1",
        "pid": 4242,
        "port": 0,
        "route": [
            flat("fraud-scorer", "1.3.0", 90, A, "x-user-id"),
            flat("churn-predictor", "1.1.0", 100, C, None),
            flat("fraud-scorer", "1.4.0", 10, B, "x-user-id"),
        ],
        "table_path": "/run/routes/checkout.table.json",
        "url": "http://127.0.0.1:9000",
    }
    diags = Diagnostics()
    new = RouteResource(ProviderConfig()).upgrade(
        UpgradeContext(diags, "modelcat_route"), 0, json.loads(json.dumps(old))
    )
    assert diags.diagnostics == []
    assert new == {
        "application": "checkout",
        "host": "127.0.0.1",
        "pid": 4242,
        "port": 0,
        "table_path": "/run/routes/checkout.table.json",
        "url": "http://127.0.0.1:9000",
        "grpc_address": None,
        "outcomes": None,
        "model": [
            {
                "name": "fraud-scorer",
                "sticky_key": "x-user-id",
                "route": [
                    {"version": "1.3.0", "weight": 90, "digest": A, "replicas": ["http://127.0.0.1:8090"],
                     "grpc_replicas": None},
                    {"version": "1.4.0", "weight": 10, "digest": B, "replicas": ["http://127.0.0.1:8010"],
                     "grpc_replicas": None},
                ],
                "mirror": [],
            },
            {
                "name": "churn-predictor",
                "sticky_key": None,
                "route": [{"version": "1.1.0", "weight": 100, "digest": C, "replicas": ["http://127.0.0.1:8100"],
                           "grpc_replicas": None}],
                "mirror": [],
            },
        ],
    }  # fmt: skip


def test_a_mirror_block_is_the_tables_mirror_and_reads_back_as_a_list_of_one() -> None:
    fraud = _model("fraud-scorer", 100, 0)
    state = {**fraud, "mirror": [{"version": "1.1.0", "percent": 20, "max_abs_difference": 0.05}]}
    data = table_bytes("checkout", [state])
    assert json.loads(data)["models"][0]["mirror"] == {"version": "1.1.0", "percent": 20, "max_abs_difference": 0.05}
    assert state_models(model_blocks(parse_table(data))) == [state]
    assert json.loads(table_bytes("checkout", [{**fraud, "mirror": []}]))["models"][0].keys() == {"name", "routes"}


def test_a_mirror_of_a_version_the_model_does_not_route_makes_an_invalid_table() -> None:
    state = {**_model("fraud-scorer", 100), "mirror": [{"version": "2.0.0", "percent": 20, "max_abs_difference": 0.05}]}
    with pytest.raises(RoutingTableInvalid) as caught:
        table_bytes("checkout", [state])
    (problem,) = caught.value.problems
    assert (problem.code, problem.message) == ("table.mirror-version", "version 2.0.0 is mirrored but not routed")


def test_a_fractional_mirror_percent_is_refused_when_the_configuration_is_validated() -> None:
    mirror = {"version": "1.1.0", "percent": 12.5, "max_abs_difference": 0.05}
    errors = _errors({"application": "checkout", "model": [{**_model("fraud-scorer", 100, 0), "mirror": [mirror]}]})
    assert errors == [
        (
            "modelcat_route: the mirror of fraud-scorer copies 12.5 %: it must be an integer from 1 to 100",
            ["model", (0,), "mirror", (0,), "percent"],
        )
    ]


def test_a_schema_2_state_is_upgraded_with_no_mirror() -> None:
    old = {
        "application": "checkout",
        "host": "127.0.0.1",
        "port": 0,
        "outcomes": None,
        "model": [_model("fraud-scorer", 100)],
    }
    del old["model"][0]["mirror"]  # schema 2 had no mirror blocks
    for route in old["model"][0]["route"]:
        del route["grpc_replicas"]  # nor gRPC
    diags = Diagnostics()
    new = RouteResource(ProviderConfig()).upgrade(
        UpgradeContext(diags, "modelcat_route"), 2, json.loads(json.dumps(old))
    )
    assert diags.diagnostics == []
    routes = [{**route, "grpc_replicas": None} for route in old["model"][0]["route"]]
    assert new == {**old, "grpc_address": None, "model": [{**old["model"][0], "route": routes, "mirror": []}]}


def test_a_schema_3_state_is_upgraded_with_no_grpc() -> None:
    mirror = [{"version": "1.1.0", "percent": 20, "max_abs_difference": 0.05}]
    old = {"application": "checkout", "host": "127.0.0.1", "port": 0, "outcomes": None,
           "model": [{**_model("fraud-scorer", 100, 0), "mirror": mirror}]}  # fmt: skip
    for route in old["model"][0]["route"]:
        del route["grpc_replicas"]  # schema 3 had no gRPC
    diags = Diagnostics()
    new = RouteResource(ProviderConfig()).upgrade(
        UpgradeContext(diags, "modelcat_route"), 3, json.loads(json.dumps(old))
    )
    assert diags.diagnostics == []
    routes = [{**route, "grpc_replicas": None} for route in old["model"][0]["route"]]
    assert new == {**old, "grpc_address": None, "model": [{**old["model"][0], "route": routes}]}
