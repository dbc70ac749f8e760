"""The routing table file: what loads, and clear errors (file, field, hint) for what does not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catalog.cli.router_command import router
from catalog.errors import RoutingTableInvalid, RoutingTableUnreadable
from catalog.serving.table import load_table, parse_table
from tests.serving.router_fixtures import digest_of

GOOD: dict[str, Any] = {
    "apiVersion": "modelcat/routing-v1",
    "application": "checkout",
    "sticky_key": "x-user-id",
    "models": [
        {
            "name": "fraud-scorer",
            "routes": [
                {
                    "version": "1.3.0",
                    "weight": 90,
                    "digest": digest_of("1.3.0"),
                    "replicas": ["http://127.0.0.1:9001/", "http://127.0.0.1:9002"],
                },
                {"version": "1.4.0", "weight": 10, "digest": digest_of("1.4.0"), "replicas": ["http://10.0.0.7:8001"]},
            ],
        },
        {
            "name": "ranker",
            "sticky_key": "x-session",
            "routes": [
                {
                    "version": "2.0.0",
                    "weight": 100,
                    "digest": digest_of("2.0.0"),
                    "replicas": ["https://r.example:443"],
                },
                {"version": "2.1.0", "weight": 0, "digest": digest_of("2.1.0"), "replicas": []},
            ],
        },
    ],
}


def _doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    for path, value in changes.items():
        node: Any = doc
        steps = path.split("__")
        for step in steps[:-1]:
            node = node[int(step)] if step.isdigit() else node[step]
        last = steps[-1]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return doc


_DELETE = object()


def _problems(doc: dict[str, Any] | str) -> RoutingTableInvalid:
    data = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(RoutingTableInvalid) as caught:
        parse_table(data.encode(), "table.json")
    return caught.value


def test_a_good_table_loads(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    path.write_text(json.dumps(GOOD))
    loaded = load_table(path)
    table = loaded.table
    assert loaded.path == str(path) and len(loaded.sha256) == 64
    assert table.application == "checkout"
    fraud, ranker = table.models
    assert fraud.routes[0].replicas == ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]  # trailing / dropped
    assert table.sticky_key_of(fraud) == "x-user-id"
    assert table.sticky_key_of(ranker) == "x-session"  # a model's own sticky header wins
    no_sticky = _doc(sticky_key=_DELETE)
    assert parse_table(json.dumps(no_sticky).encode()).sticky_key is None


@pytest.mark.parametrize(
    ("changes", "path", "message", "hint"),
    [
        ({"models__0__routes__1__weight": 5}, "models[fraud-scorer].routes", "add up to 95, not 100", "sum to"),
        ({"models__0__routes__1__weight": "10"}, "models[fraud-scorer].routes[1.4.0].weight", "not '10'", ""),
        ({"models__0__routes__1__weight": 10.0}, "models[fraud-scorer].routes[1.4.0].weight", "not 10.0", ""),
        ({"models__0__routes__1__weight": True}, "models[fraud-scorer].routes[1.4.0].weight", "not True", ""),
        ({"models__0__routes__1__weight": 101}, "models[fraud-scorer].routes[1.4.0].weight", "less than or equal", ""),
        ({"models__0__routes__0__wieght": 1}, "models[fraud-scorer].routes[1.3.0].wieght", "unknown field", "weight"),
        ({"models__1__stiky_key": "x"}, "models[ranker].stiky_key", "unknown field 'stiky_key'", "sticky_key"),
        ({"replicas": []}, "replicas", "unknown field 'replicas'", "allowed here"),
        ({"apiVersion": "v1"}, "apiVersion", "modelcat/routing-v1", "modelcat/routing-v1"),
        ({"application": _DELETE}, "application", "required field 'application' is missing", ""),
        ({"models__0__routes__1__digest": "sha256:abc"}, "models[fraud-scorer].routes[1.4.0].digest", "match", "64"),
        ({"models__0__routes__1__version": "1.3.0"}, "models[fraud-scorer].routes[1.3.0].version", "twice", ""),
        ({"models__0__routes__1__digest": digest_of("1.3.0")}, "routes[1.4.0].digest", "same digest", ""),
        ({"models__1__name": "fraud-scorer"}, "models[fraud-scorer].name", "listed twice", ""),
        ({"models__0__routes__1__replicas": []}, "routes[1.4.0].replicas", "gets 10% of traffic", "weight to 0"),
        ({"models__0__routes__1__replicas": ["ftp://x:1"]}, "routes[1.4.0].replicas[0]", "http:// or https://", ""),
        ({"models__0__routes__1__replicas": ["http://u:p@x:1"]}, "routes[1.4.0].replicas[0]", "no credentials", ""),
        ({"models__0__routes__1__replicas": ["http://x:99999"]}, "routes[1.4.0].replicas[0]", "port", ""),
        ({"models__0__routes__1__grpc_replicas": ["grpc://x:1"]}, "routes[1.4.0].grpc_replicas[0]", "host:port", ""),
        ({"models__0__routes__1__grpc_replicas": ["x"]}, "routes[1.4.0].grpc_replicas[0]", "host:port", ""),
        ({"models__0__routes__1__grpc_replicas": ["::1:9001"]}, "routes[1.4.0].grpc_replicas[0]", "[::1]:9001", ""),
        ({"models__0__routes__1__grpc_replicas": ["x:0"]}, "routes[1.4.0].grpc_replicas[0]", "host:port", ""),
        ({"sticky_key": "X-User"}, "sticky_key", "match", ""),
        ({"models": []}, "models", "at least 1", ""),
    ],
)
def test_errors_name_the_field(changes: dict[str, Any], path: str, message: str, hint: str) -> None:
    error = _problems(_doc(**changes))
    assert any(path in p.path and message in p.message for p in error.problems), error.problems
    if hint:
        assert any(hint in p.hint for p in error.problems), error.problems
    assert all(p.file == "table.json" for p in error.problems)
    assert str(error).startswith("table.json: routing table refused: ")


def test_a_route_may_name_its_replicas_grpc_addresses() -> None:
    doc = _doc(models__0__routes__0__grpc_replicas=["127.0.0.1:9101", "[::1]:9102", "replica-0.svc:9001"])
    fraud, ranker = parse_table(json.dumps(doc).encode()).models
    assert fraud.routes[0].grpc_replicas == ["127.0.0.1:9101", "[::1]:9102", "replica-0.svc:9001"]
    assert fraud.routes[1].grpc_replicas is None and ranker.routes[0].grpc_replicas is None  # none: HTTP only


def test_every_schema_problem_is_reported_at_once() -> None:
    doc = _doc(models__0__routes__0__weight="90", models__0__routes__1__wieght=3, application="Checkout")
    assert len(_problems(doc).problems) == 3


def test_json_errors_have_a_position_and_duplicate_keys_are_refused() -> None:
    broken = json.dumps(GOOD, indent=2).replace('"weight": 10,', '"weight": 10,,')
    (problem,) = _problems(broken).problems
    assert problem.code == "table.json" and problem.line > 1 and problem.column > 0
    duplicated = '{"apiVersion": "modelcat/routing-v1", "application": "a", "application": "b", "models": []}'
    assert "duplicate key 'application'" in _problems(duplicated).problems[0].message
    assert "JSON object" in _problems("[1, 2]").problems[0].message
    assert "not UTF-8" in _problems_bytes(b'{"a": "\xff"}').problems[0].message


def _problems_bytes(data: bytes) -> RoutingTableInvalid:
    with pytest.raises(RoutingTableInvalid) as caught:
        parse_table(data, "table.json")
    return caught.value


def test_a_missing_file_is_an_environment_error(tmp_path: Path) -> None:
    with pytest.raises(RoutingTableUnreadable) as caught:
        load_table(tmp_path / "nope.json")
    assert caught.value.exit_code == 2 and "nope.json" in str(caught.value)


def test_the_command_exits_1_on_a_bad_table_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    path.write_text(json.dumps(_doc(models__0__routes__1__weight=5, models__1__routes__0__replica=[])))
    result = CliRunner().invoke(router, ["--table", str(path), "--port", "0"])
    assert result.exit_code == 1, result.output
    assert "models[ranker].routes[2.0.0].replica: unknown field 'replica'" in result.output
    assert "did you mean 'replicas'?" in result.output
    assert str(path) in result.output
    result = CliRunner().invoke(router, ["--table", str(path), "--port", "0", "--format", "json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["problems"][0]["path"] == "models[ranker].routes[2.0.0].replica"
    path.write_text(json.dumps(_doc(models__0__routes__1__weight=5)))
    result = CliRunner().invoke(router, ["--table", str(path), "--port", "0"])
    assert result.exit_code == 1
    assert "models[fraud-scorer].routes: route weights add up to 95, not 100" in result.output
    result = CliRunner().invoke(router, ["--table", str(tmp_path / "missing.json"), "--port", "0"])
    assert result.exit_code == 2 and "cannot read routing table" in result.output
