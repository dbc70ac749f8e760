"""Plan changes told in model terms."""

from __future__ import annotations

from catalog.synth.changes import describe_changes

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def _endpoint(version: str, digest: str, replicas: int) -> dict:
    return {
        "name": f"checkout.fraud-scorer.{version}",
        "model": "fraud-scorer",
        "version": version,
        "digest": digest,
        "replicas": replicas,
        "labels": {"modelcat/application": "checkout"},
    }


def _route(*weights: tuple[str, int]) -> dict:
    return {
        "application": "checkout",
        "model": [{"name": "fraud-scorer", "route": [{"version": v, "weight": w} for v, w in weights]}],
    }


def _rc(kind: str, actions: list[str], before: dict | None, after: dict | None) -> dict:
    return {"address": f"{kind}.x", "type": kind, "change": {"actions": actions, "before": before, "after": after}}


def test_each_kind_of_change_reads_in_model_terms() -> None:
    lines = [
        c.line()
        for c in describe_changes(
            [
                _rc("modelcat_endpoint", ["create"], None, _endpoint("1.4.0", B, 3)),
                _rc("modelcat_endpoint", ["update"], _endpoint("1.3.0", A, 2), _endpoint("1.3.0", A, 3)),
                _rc("modelcat_endpoint", ["create", "delete"], _endpoint("1.3.0", A, 3), _endpoint("1.3.0", B, 3)),
                _rc("modelcat_endpoint", ["delete"], _endpoint("1.2.0", A, 2), None),
                _rc(
                    "modelcat_route",
                    ["update"],
                    _route(("1.3.0", 90), ("1.4.0", 10)),
                    _route(("1.3.0", 80), ("1.4.0", 20)),
                ),
                _rc("modelcat_route", ["update"], _route(("1.2.0", 100)), _route(("1.3.0", 100))),
                _rc("modelcat_route", ["no-op"], _route(("1.3.0", 100)), _route(("1.3.0", 100))),
                _rc("kubernetes_deployment_v1", ["delete"], {}, None),
            ]
        )
    ]
    assert lines == [
        "create   checkout: fraud-scorer 1.4.0 endpoint: 3 replicas of sha256:bbbbbbbbbbbb",
        "update   checkout: fraud-scorer 1.3.0 endpoint: replicas 2 -> 3",
        "replace  checkout: fraud-scorer 1.3.0 endpoint: bytes sha256:aaaaaaaaaaaa -> sha256:bbbbbbbbbbbb",
        "delete   checkout: fraud-scorer 1.2.0 endpoint: stop 2 replicas",
        "update   checkout: router: fraud-scorer 1.3.0 90 -> 80 %, fraud-scorer 1.4.0 10 -> 20 %",
        "update   checkout: router: fraud-scorer 1.2.0 removed (was 100 %), fraud-scorer 1.3.0 100 %",
        "delete   kubernetes_deployment_v1.x",
    ]


def test_a_stacks_prometheus_reads_as_what_it_scrapes_and_keeps() -> None:
    body = {"name": "production-local", "host": "127.0.0.1", "port": 0, "retention": "2d", "scrape_interval": "5s"}
    lines = [
        c.line()
        for c in describe_changes(
            [_rc("modelcat_metrics", ["create"], None, body), _rc("modelcat_metrics", ["delete"], body, None)]
        )
    ]
    assert lines == [
        "create   production-local: Prometheus: scrape the routers and replicas every 5s, keep 2d",
        "delete   production-local: Prometheus: stop it",
    ]


def test_an_endpoint_whose_secrets_change_reads_as_a_restart_one_replica_at_a_time() -> None:
    held = {"feature-token": 1.0, "store": 4.0}
    block = {"name": "feature-token", "vault": "vault://secret/checkout/token", "field": None, "version": None}
    before = _endpoint("1.3.0", A, 2) | {"secret": [block], "secret_versions": held}
    rotated = before | {"secret_versions": None}  # a new KV version: unknown until the replicas read it
    pinned = before | {"secret": [block | {"version": 2}]}
    lines = [
        c.line()
        for c in describe_changes(
            [
                _rc("modelcat_endpoint", ["update"], before, rotated),
                _rc("modelcat_endpoint", ["update"], before, pinned),
                _rc("modelcat_endpoint", ["update"], before, before | {"replicas": 3}),
            ]
        )
    ]
    restart = "new secret versions (held: feature-token v1, store v4): replicas restart one at a time"
    assert lines == [
        f"update   checkout: fraud-scorer 1.3.0 endpoint: {restart}",
        f"update   checkout: fraud-scorer 1.3.0 endpoint: {restart}",
        "update   checkout: fraud-scorer 1.3.0 endpoint: replicas 2 -> 3",
    ]
