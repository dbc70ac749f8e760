"""The router's HTTP surface: headers, pinning, pass-through, the assignment log, metrics, shutdown."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from catalog.domain.routing import bucket_of, key_hash
from tests.serving.router_fixtures import (
    OIP_BODY,
    Answer,
    FakeReplica,
    Fleet,
    RouterProcess,
    digest_of,
    infer_all,
    logged_assignments,
    metric,
    table_document,
    write_table,
)

pytestmark = pytest.mark.slow

M = "scorer"
A, B, Z = "1.0.0", "1.1.0", "1.2.0"  # 70%, 30%, and 0% (reachable only when pinned)


@dataclass
class Setup:
    router: RouterProcess
    analytics: Path
    fakes: dict[str, FakeReplica]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("router-http")
    fleet = Fleet(tmp)
    try:
        fakes = fleet.fakes(M, [(A, "a-1"), (A, "a-2"), (B, "b-1"), (Z, "z-1")])
        (liar,) = fleet.fakes("liar", [(A, "liar-1")], digest=digest_of("something else"))
        by_name = {f.name: f for f in (*fakes, liar)}
        doc = table_document(
            {
                M: [(A, 70, fakes[:2]), (B, 30, fakes[2:3]), (Z, 0, fakes[3:])],
                "liar": [(A, 100, [liar])],
            },
            application="checkout",
        )
        write_table(tmp / "table.json", doc)
        analytics = tmp / "analytics"
        yield Setup(fleet.router(tmp / "table.json", analytics=analytics), analytics, by_name)
    finally:
        fleet.close()


def _post(setup: Setup, path: str = f"/v2/models/{M}/infer", **headers: str) -> httpx.Response:
    return httpx.post(setup.router.url + path, json=OIP_BODY, headers=headers, timeout=10, trust_env=False)


def _log_lines(setup: Setup, request_ids: set[str]) -> list[dict[str, object]]:
    """The logged lines of these requests, once all are logged (the writer gathers lines 50 ms)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in logged_assignments(setup.analytics, "checkout") if line["request_id"] in request_ids]
        if len({line["request_id"] for line in lines}) >= len(request_ids) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_request_id_is_kept_or_made_and_identity_headers_are_set(setup: Setup) -> None:
    r = _post(setup, **{"x-request-id": "req-0001", "x-user-id": "alice"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-0001"
    assert r.headers["x-seen-request-id"] == "req-0001"  # the replica got it too
    version = r.headers["x-model-version"]
    assert version == (A if bucket_of("alice", M) < 70 else B)
    assert r.headers["x-model-digest"] == digest_of(version) and r.headers["x-model-name"] == M
    assert r.json()["model_version"] == version

    made = _post(setup)
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert made.headers["x-seen-request-id"] == made.headers["x-request-id"]
    assert made.headers["x-model-digest"] == digest_of(made.headers["x-model-version"])
    replaced = _post(setup, **{"x-request-id": "x" * 500})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])


def test_pinning_a_version_including_one_at_weight_zero(setup: Setup) -> None:
    r = _post(setup, f"/v2/models/{M}/versions/{Z}/infer", **{"x-user-id": "alice"})
    assert r.status_code == 200 and r.headers["x-model-version"] == Z and r.headers["x-replica"] == "z-1"
    missing = _post(setup, f"/v2/models/{M}/versions/9.9.9/infer")
    assert missing.status_code == 404
    assert "no version 9.9.9" in missing.json()["error"] and A in missing.json()["error"]
    unknown = _post(setup, "/v2/models/nope/infer")
    assert unknown.status_code == 404 and "not routed by application 'checkout'" in unknown.json()["error"]
    assert "x-request-id" in unknown.headers
    # and unpinned, weight 0 is never chosen
    answers = infer_all(setup.router.url, [{"x-user-id": f"u{i}"} for i in range(200)] + [{}] * 200, M)
    assert Z not in {a.version for a in answers}


def test_metadata_and_readiness(setup: Setup) -> None:
    base = setup.router.url
    get = httpx.Client(trust_env=False, timeout=10).get
    assert get(f"{base}/v2/health/live").json() == {"live": True}
    ready = get(f"{base}/v2/health/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    meta = get(f"{base}/v2/models/{M}")
    assert meta.status_code == 200 and meta.json()["versions"] == [A]  # the largest weight, for every caller
    assert meta.headers["x-model-version"] == A
    key = next(k for k in (f"k{i}" for i in range(1000)) if bucket_of(k, M) >= 70)
    assert get(f"{base}/v2/models/{M}", headers={"x-user-id": key}).json()["versions"] == [B]
    assert get(f"{base}/v2/models/{M}/versions/{Z}").json()["versions"] == [Z]
    assert get(f"{base}/v2/models/{M}/versions/{Z}/ready").status_code == 200
    routing = get(f"{base}/routing").json()
    assert routing["application"] == "checkout"
    scorer = next(m for m in routing["models"] if m["name"] == M)
    assert scorer["sticky_key"] == "x-user-id"
    assert [(r["version"], r["weight"], r["buckets"]) for r in scorer["routes"]] == [
        (A, 70, [[0, 69]]),
        (B, 30, [[70, 99]]),
        (Z, 0, []),
    ]
    assert scorer["routes"][0]["replicas"] == [
        {"url": setup.fakes["a-1"].url, "up": True},
        {"url": setup.fakes["a-2"].url, "up": True},
    ]


def test_wrong_methods_are_405_and_head_is_a_bodiless_get(setup: Setup) -> None:
    base = setup.router.url
    wrong = httpx.get(f"{base}/v2/models/{M}/infer", timeout=10, trust_env=False)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST" and "GET" in wrong.json()["error"]
    assert httpx.post(f"{base}/v2/models/{M}", timeout=10, trust_env=False).status_code == 405
    head = httpx.head(f"{base}/v2/models/{M}", timeout=10, trust_env=False)
    assert head.status_code == 200 and head.content == b"" and head.headers["x-model-version"] == A
    assert int(head.headers["content-length"]) > 0  # what the GET's body would be
    assert httpx.get(f"{base}/v2/models/{M}/nothing", timeout=10, trust_env=False).status_code == 404


def test_replica_errors_pass_through_without_retry(setup: Setup) -> None:
    served = setup.fakes["z-1"].stats()["infer"]
    retries = metric(setup.router, "modelcat_router_retries_total", model=M, version=Z)
    r = _post(setup, f"/v2/models/{M}/versions/{Z}/infer", **{"x-fake-status": "500"})
    assert r.status_code == 500 and r.json() == {"error": "fake failure from z-1"}
    assert r.headers["x-model-version"] == Z and r.headers["x-request-id"]
    r = _post(setup, f"/v2/models/{M}/versions/{Z}/infer", **{"x-fake-status": "400"})
    assert r.status_code == 400
    assert setup.fakes["z-1"].stats()["infer"] == served + 2
    assert metric(setup.router, "modelcat_router_retries_total", model=M, version=Z) == retries


def test_a_replica_serving_other_bytes_is_refused(setup: Setup) -> None:
    r = _post(setup, "/v2/models/liar/infer")
    assert r.status_code == 502
    assert f"serves {digest_of('something else')}, not {digest_of(A)}" in r.json()["error"]
    assert r.headers["x-model-digest"] == digest_of(A)  # what the table routes, never what the liar said
    assert metric(setup.router, "modelcat_router_upstream_errors_total", model="liar", kind="identity") >= 1


def test_assignment_log_and_metrics_match_the_responses(setup: Setup) -> None:
    counts_before = {
        (v, how): metric(setup.router, "modelcat_router_assignments_total", model=M, version=v, how=how)
        for v in (A, B, Z)
        for how in ("sticky", "random", "pinned")
    }
    keyed = [{"x-user-id": f"log-user-{i}", "x-request-id": f"log-{i}"} for i in range(150)]
    unkeyed = [{"x-request-id": f"log-anon-{i}"} for i in range(100)]
    answers: list[Answer] = infer_all(setup.router.url, keyed + unkeyed, M)
    pinned = infer_all(setup.router.url, [{"x-request-id": "log-pinned"}], M, path=f"/v2/models/{M}/versions/{Z}/infer")
    lines = _log_lines(setup, {h["x-request-id"] for h in keyed + unkeyed} | {"log-pinned"})
    by_id = {line["request_id"]: line for line in lines}
    assert len(by_id) == len(lines) == len(answers) + 1
    for headers, answer in zip(keyed + unkeyed, answers, strict=True):
        line = by_id[headers["x-request-id"]]
        assert answer.request_id == headers["x-request-id"]
        assert (line["model"], line["version"], line["digest"], line["status"]) == (
            M,
            answer.version,
            answer.digest,
            answer.status,
        )
        assert line["application"] == "checkout" and line["replica"] == setup.fakes[answer.replica or ""].url
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", str(line["time"]))
        if "x-user-id" in headers:
            key = headers["x-user-id"]
            assert line["assignment"] == "sticky" and line["key_hash"] == key_hash(key)
            assert line["bucket"] == bucket_of(key, M)
        else:
            assert line["assignment"] == "random" and line["key_hash"] is None and line["bucket"] is None
    assert by_id["log-pinned"]["assignment"] == "pinned" and by_id["log-pinned"]["version"] == Z
    assert pinned[0].status == 200
    text = "".join(p.read_text(encoding="utf-8") for p in setup.analytics.rglob("*.jsonl"))
    assert "log-pinned" in text and "log-user-" not in text  # raw keys never reach the log

    seen = Counter(
        (a.version, "sticky" if "x-user-id" in h else "random") for h, a in zip(keyed + unkeyed, answers, strict=True)
    )
    seen[(Z, "pinned")] += 1
    for (version, how), before_count in counts_before.items():
        now = metric(setup.router, "modelcat_router_assignments_total", model=M, version=version, how=how)
        assert now - before_count == seen[(version, how)], (version, how)
    assert metric(setup.router, "modelcat_router_request_duration_seconds_count", model=M, version=A) > 0
    assert metric(setup.router, "modelcat_router_route_weight", model=M, version=B) == 30
    assert metric(setup.router, "modelcat_router_table_generation") == 1


def test_sigterm_lets_requests_in_flight_finish_then_exits_0(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    try:
        (fake,) = fleet.fakes(M, [(A, "a-1")])
        table = tmp_path / "table.json"
        write_table(table, table_document({M: [(A, 100, [fake])]}))
        analytics = tmp_path / "analytics"
        router = fleet.router(table, "--timeout", "0.6", analytics=analytics)
        assert re.fullmatch(r"modelcat router: application shop listening on http://127\.0\.0\.1:\d+ .*", router.line)

        slow = _post_to(router, **{"x-fake-delay": "1.5"})
        assert slow.status_code == 504 and "did not answer in time" in slow.json()["error"]

        result: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: result.append(_post_to(router, **{"x-fake-delay": "0.4"})))
        thread.start()
        time.sleep(0.15)
        router.proc.send_signal(signal.SIGTERM)
        assert router.proc.wait(15) == 0
        thread.join(10)
        assert result and result[0].status_code == 200
        lines = logged_assignments(analytics, "shop")
        assert [line["status"] for line in lines] == [504, 200]  # the log was flushed and closed
        assert not list((analytics / "assignments").rglob("*.jsonl"))  # its segment closed: Parquet
        assert "Traceback" not in router.stderr()
    finally:
        fleet.close()


def _post_to(router: RouterProcess, **headers: str) -> httpx.Response:
    return httpx.post(f"{router.url}/v2/models/{M}/infer", json=OIP_BODY, headers=headers, timeout=10, trust_env=False)


def test_a_busy_port_is_an_environment_error(tmp_path: Path) -> None:
    import socket

    fleet = Fleet(tmp_path)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        table = tmp_path / "table.json"
        write_table(table, table_document({M: [(A, 100, ["http://127.0.0.1:9"])]}))
        router = fleet.router(table, "--port", str(busy.getsockname()[1]), wait=False)
        assert router.proc.wait(30) == 2
        assert "cannot listen on" in router.stderr()
    finally:
        busy.close()
        fleet.close()
