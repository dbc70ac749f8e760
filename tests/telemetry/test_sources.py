"""The telemetry sources over known traffic: a real Prometheus (Debian's, started on a free loopback
port and stopped after) scraping a real router, and the router's own counters, agree per version;
where Prometheus is down or has no series the routers' counters are read and the notes say why;
where neither has a series the reading says "no data"."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from catalog.provider.metrics import start_prometheus, stop_prometheus
from catalog.provider.processes import ProcessId, is_alive
from catalog.provider.runstate import RunDir
from catalog.telemetry.counters import read_counters
from catalog.telemetry.prometheus import PROMETHEUS_BINARY, MetricsDir, PrometheusRecord, write_targets
from catalog.telemetry.promql import read_prometheus, read_telemetry
from tests.serving.router_fixtures import Fleet, infer_all, table_document, write_table

APP, MODEL = "shop", "rec"
LIMIT_MS = 250.0  # a bucket bound of the router's histogram (0.25 s)
needs_prometheus = pytest.mark.skipif(
    not Path(PROMETHEUS_BINARY).is_file(), reason=f"{PROMETHEUS_BINARY} is absent (make system-deps installs it)"
)


@dataclass
class Traffic:
    run_dir: Path
    router_url: str
    since: datetime
    sent: dict[str, Counter[str]]  # version -> {"requests": n, "errors": n}


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    """A router of ``shop`` over two fake versions of ``rec`` that has answered known traffic: 200
    keyed requests, 30 failing with 500, 10 slower than the latency limit; its scrape target written
    where the stack's Prometheus reads it."""
    work = tmp_path_factory.mktemp("telemetry")
    fleet = Fleet(work)
    try:
        since = datetime.now(UTC) - timedelta(seconds=1)
        one, two = fleet.fakes(MODEL, [("1.0.0", "one"), ("2.0.0", "two")])
        table = work / "table.json"
        write_table(table, table_document({MODEL: [("1.0.0", 50, [one]), ("2.0.0", 50, [two])]}, application=APP))
        router = fleet.router(table)
        run_dir = work / "run"
        write_targets(MetricsDir(run_dir).router_targets(APP), [router.url], {"application": APP, "role": "router"})
        headers = [{"x-user-id": f"user-{n}"} for n in range(200)]
        headers += [{"x-user-id": f"failing-{n}", "x-fake-status": "500"} for n in range(30)]
        headers += [{"x-user-id": f"slow-{n}", "x-fake-delay": "0.3"} for n in range(10)]
        sent: dict[str, Counter[str]] = {}
        for answer in infer_all(router.url, headers, MODEL):
            assert answer.version in ("1.0.0", "2.0.0"), answer
            counts = sent.setdefault(answer.version, Counter())
            counts["requests"] += 1
            counts["errors"] += answer.status >= 500
        yield Traffic(run_dir, router.url, since, sent)
    finally:
        fleet.close()


@pytest.fixture
def prometheus(traffic: Traffic) -> Iterator[PrometheusRecord]:
    """The stack's Prometheus, once it holds a scrape of all the traffic; stopped after."""
    record = start_prometheus(RunDir(traffic.run_dir), scrape_interval="1s")
    try:
        _wait_scraped(record.url, sum(c["requests"] for c in traffic.sent.values()))
        yield record
    finally:
        stop_prometheus(RunDir(traffic.run_dir))
        assert not is_alive(ProcessId(record.pid, record.start_time))


def _wait_scraped(url: str, total: int, timeout: float = 120.0) -> None:
    """Until Prometheus holds a sample of the router's counters that counts all ``total`` requests."""
    query = f'sum(modelcat_router_requests_total{{application="{APP}",endpoint="infer"}})'
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5, trust_env=False).json()
        result = answer["data"]["result"]
        seen = float(result[0]["value"][1]) if result else None
        if seen == total:
            return
        time.sleep(0.2)
    raise AssertionError(f"Prometheus did not scrape {total} requests in {timeout} s (has {seen})")


def _counts(reading) -> dict[str, tuple[int, int]]:
    return {v: (t.requests, t.errors) for v, t in reading.versions.items()}


@pytest.mark.slow
@needs_prometheus
def test_prometheus_and_the_routers_counters_agree_on_the_same_traffic(
    traffic: Traffic, prometheus: PrometheusRecord
) -> None:
    until = datetime.now(UTC)
    expected = {v: (c["requests"], c["errors"]) for v, c in traffic.sent.items()}
    assert all(errors > 0 for _, errors in expected.values())  # both versions failed some

    from_prometheus = read_prometheus(prometheus.url, APP, MODEL, traffic.since, until, LIMIT_MS)
    from_counters = read_counters(traffic.run_dir, APP, MODEL, LIMIT_MS)

    assert _counts(from_prometheus) == _counts(from_counters) == expected
    for version, mine in from_prometheus.versions.items():
        theirs = from_counters.versions[version]
        assert mine.latency_p50_ms == pytest.approx(theirs.latency_p50_ms, rel=1e-9)
        assert mine.latency_p99_ms == pytest.approx(theirs.latency_p99_ms, rel=1e-9)
        assert mine.latency_p99_ms is not None and mine.latency_p99_ms >= 250.0  # the 10 slow ones are in the top 1 %+
        assert mine.over_latency_limit == theirs.over_latency_limit
    assert sum(t.over_latency_limit or 0 for t in from_prometheus.versions.values()) == 10
    assert from_prometheus.latency_bound_ms == from_counters.latency_bound_ms == LIMIT_MS
    assert "histogram_quantile(0.99, sum by (version, le)" in from_prometheus.queries["latency_p99"]
    assert 'code=~"5.."' in from_prometheus.queries["errors"]

    chosen = read_telemetry(traffic.run_dir, APP, MODEL, traffic.since, until, LIMIT_MS)
    assert chosen.source == "prometheus" and _counts(chosen) == expected and not chosen.notes


@pytest.mark.slow
@needs_prometheus
def test_prometheus_without_series_of_the_model_falls_back_and_then_says_no_data(
    traffic: Traffic, prometheus: PrometheusRecord
) -> None:
    until = datetime.now(UTC)
    assert read_prometheus(prometheus.url, APP, "absent", traffic.since, until).no_data

    reading = read_telemetry(traffic.run_dir, APP, "absent", traffic.since, until)
    assert reading.no_data and reading.source == "router-counters"
    assert f"Prometheus at {prometheus.url} has no series of {APP}/absent" in reading.notes[0]
    assert any(note.startswith("no data:") for note in reading.notes), reading.notes


def _record_of_a_dead_prometheus(run_dir: Path) -> str:
    """A Prometheus record whose port nobody listens on; its URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    PrometheusRecord(url, 1, 1, "127.0.0.1", port, "2d", "5s", "").write(MetricsDir(run_dir))
    return url


def test_prometheus_down_falls_back_to_the_routers_counters_and_says_why(traffic: Traffic, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    targets = MetricsDir(run_dir).router_targets(APP)
    targets.parent.mkdir(parents=True)
    targets.write_bytes(MetricsDir(traffic.run_dir).router_targets(APP).read_bytes())
    url = _record_of_a_dead_prometheus(run_dir)

    reading = read_telemetry(run_dir, APP, MODEL, traffic.since, datetime.now(UTC))

    assert reading.source == "router-counters"
    assert _counts(reading) == {v: (c["requests"], c["errors"]) for v, c in traffic.sent.items()}
    assert reading.notes[0].startswith(f"Prometheus at {url} does not answer (ConnectError")
    assert reading.notes[0].endswith(": read the routers' own counters")
    assert any("the window is not applied" in note for note in reading.notes)


def test_no_prometheus_on_record_falls_back_to_the_routers_counters(traffic: Traffic) -> None:
    reading = read_telemetry(traffic.run_dir, APP, MODEL, traffic.since, datetime.now(UTC))
    assert reading.source == "router-counters" and not reading.no_data
    assert reading.notes[0].startswith("no Prometheus is recorded for this stack")


def test_neither_prometheus_nor_a_router_is_no_data_with_the_reasons(tmp_path: Path) -> None:
    url = _record_of_a_dead_prometheus(tmp_path)
    reading = read_telemetry(tmp_path, APP, MODEL, datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    assert reading.no_data and reading.versions == {}
    assert reading.notes[0].startswith(f"Prometheus at {url} does not answer")
    assert reading.notes[1].startswith(f"no data: no router of {APP} is recorded")


def test_scrape_targets_are_file_sd_groups_and_a_stopped_process_has_none(tmp_path: Path) -> None:
    path = MetricsDir(tmp_path).router_targets(APP)
    write_targets(path, ["http://127.0.0.1:8001", ""], {"role": "router", "application": APP})
    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:8001"], "labels": {"application": APP, "role": "router"}}
    ]
    write_targets(path, [""], {"role": "router", "application": APP})
    assert not path.exists()
