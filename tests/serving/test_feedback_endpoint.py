"""The router's POST /v2/feedback, in process: acknowledged once stored, refused whole with the event and field."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalog.serving.feedback_endpoint import MAX_BODY_BYTES
from catalog.serving.router import Router, RouterSettings
from tests.feedback.cases import BAD, OUTCOMES, event, received_at
from tests.serving.router_fixtures import digest_of


def _router(tmp_path: Path, analytics: bool = True, outcomes: dict[str, str] = OUTCOMES) -> Router:
    table = {
        "apiVersion": "modelcat/routing-v1",
        "application": "storefront",
        "outcomes": outcomes,
        "models": [{"name": "recommender", "routes": [
            {"version": "2.1.0", "weight": 100, "digest": digest_of("2.1.0"), "replicas": ["http://127.0.0.1:9"]}
        ]}],
    }  # fmt: skip
    (tmp_path / "table.json").write_text(json.dumps(table))
    folder = tmp_path / "analytics" if analytics else None
    return Router(RouterSettings(table_path=tmp_path / "table.json", analytics_dir=folder))


def _post(router: Router, body: Any = None, content: bytes | None = None) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=router.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            return await client.post("/v2/feedback", json=body, content=content)

    return asyncio.run(send())


def _stored(tmp_path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((tmp_path / "analytics" / "outcomes").rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_a_batch_is_acknowledged_with_its_count_once_stored(tmp_path: Path):
    router = _router(tmp_path)
    answer = _post(router, {"events": [event(), event(event_id="e-2", request_id=None, unit="alice")]})
    assert (answer.status_code, answer.json()) == (200, {"accepted": 2, "duplicates": 0})
    assert [e["event_id"] for e in _stored(tmp_path)] == ["e-1", "e-2"]
    assert "alice" not in json.dumps(_stored(tmp_path))


def test_a_batch_sent_again_is_stored_again_and_counted_as_duplicates(tmp_path: Path):
    router = _router(tmp_path)
    _post(router, {"events": [event(), event(event_id="e-2")]})
    answer = _post(router, {"events": [event(), event(event_id="e-2"), event(event_id="e-3")]})
    assert answer.json() == {"accepted": 3, "duplicates": 2}


@pytest.mark.parametrize(("what", "row", "field"), BAD, ids=[c[0] for c in BAD])
def test_a_bad_event_is_a_400_naming_its_index_and_field_and_nothing_is_written(
    tmp_path: Path, what: str, row: dict[str, Any], field: str
):
    row = received_at(row, datetime.now(UTC))  # the router stamps the time it received the events
    answer = _post(_router(tmp_path), {"events": [event(event_id="fine"), row]})
    assert answer.status_code == 400, answer.text
    problems = answer.json()["problems"]
    assert [(p["index"], p["field"]) for p in problems] == [(1, field)]
    assert f"events[1].{field}" in answer.json()["error"]
    assert _stored(tmp_path) == []


def test_an_outcome_the_table_does_not_declare_is_refused(tmp_path: Path):
    answer = _post(_router(tmp_path, outcomes={"conversion": "proportion"}), {"events": [event(outcome="is_fraud")]})
    assert answer.status_code == 400
    assert answer.json()["problems"][0]["message"] == (
        "outcome 'is_fraud' is not declared by application storefront (declared: conversion)"
    )


@pytest.mark.parametrize(
    "content",
    [b"not json", b'[{"event_id": "e-1"}]', b'{"events": {}}', b'{"events": [], "application": "storefront"}'],
)
def test_a_body_that_is_not_an_events_object_is_a_400(tmp_path: Path, content: bytes):
    answer = _post(_router(tmp_path), content=content)
    assert answer.status_code == 400
    assert _stored(tmp_path) == []


def test_a_body_over_the_limit_is_a_413_and_nothing_is_written(tmp_path: Path):
    rows = [event(event_id=f"e-{i}") for i in range(MAX_BODY_BYTES // 60)]
    answer = _post(_router(tmp_path), {"events": rows})
    assert answer.status_code == 413
    assert _stored(tmp_path) == []


def test_a_router_without_an_analytics_folder_acknowledges_nothing(tmp_path: Path):
    answer = _post(_router(tmp_path, analytics=False), {"events": [event()]})
    assert answer.status_code == 503
    assert "--analytics-dir" in answer.json()["error"]
