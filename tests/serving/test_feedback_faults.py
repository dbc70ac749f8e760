"""POST /v2/feedback against real faults: a disk that cannot hold the batch, a router killed mid-write."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from catalog.feedback.events import validate_events
from catalog.feedback.ingest import outcome_dir
from tests.feedback.cases import OUTCOMES, event
from tests.helpers import ROOT
from tests.serving.router_fixtures import _first_line, digest_of

pytestmark = pytest.mark.slow


@dataclass
class Started:
    proc: subprocess.Popen[str]
    url: str


@dataclass
class Routers:
    tmp: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, limit: Callable[[], None] | None = None) -> Started:
        table = self.tmp / "table.json"
        if not table.exists():
            table.write_text(json.dumps({
                "apiVersion": "modelcat/routing-v1", "application": "storefront", "outcomes": OUTCOMES,
                "models": [{"name": "recommender", "routes": [{"version": "2.1.0", "weight": 100,
                            "digest": digest_of("2.1.0"), "replicas": ["http://127.0.0.1:9"]}]}],
            }))  # fmt: skip
        argv = [sys.executable, "-m", "catalog.cli.router_command", "--table", str(table), "--port", "0",
                "--analytics-dir", str(self.tmp / "analytics")]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        # preexec_fn only sets a limit, and only where the test runs no thread of its own
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
            preexec_fn=limit,  # noqa: PLW1509
        )  # fmt: skip
        self.started.append(proc)
        line = _first_line(proc, 30)
        return Started(proc, line.split("listening on ")[1].split()[0])

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            if proc.stdout:
                proc.stdout.close()


@pytest.fixture
def routers(tmp_path: Path) -> Iterator[Routers]:
    fleet = Routers(tmp_path)
    try:
        yield fleet
    finally:
        fleet.close()


def _post(router: Started, rows: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{router.url}/v2/feedback", json={"events": rows}, timeout=60, trust_env=False)


def _segments(tmp: Path) -> list[Path]:
    return sorted(outcome_dir(tmp / "analytics", "storefront").glob("day=*/*.jsonl"))


def _ids(tmp: Path) -> list[str]:
    return [json.loads(line)["event_id"] for path in _segments(tmp) for line in path.read_text().splitlines()]


def test_a_batch_the_disk_cannot_hold_is_a_503_and_nothing_of_it_is_kept(routers: Routers, tmp_path: Path):
    def limit() -> None:  # a real EFBIG past 64 KiB for every file the router writes (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    router = routers.start(limit)
    assert _post(router, [event(event_id=f"small-{i}") for i in range(3)]).status_code == 200
    refused = _post(router, [event(event_id=f"big-{i}") for i in range(5000)])  # ~700 kB
    assert refused.status_code == 503, refused.text
    assert "no space left on device" in refused.json()["error"]
    assert "nothing was acknowledged" in refused.json()["error"]
    assert _ids(tmp_path) == ["small-0", "small-1", "small-2"]
    assert _post(router, [event(event_id="after")]).status_code == 200  # the router goes on
    assert _ids(tmp_path) == ["small-0", "small-1", "small-2", "after"]


def _size(rows: list[dict[str, Any]]) -> int:
    """The bytes the router writes for ``rows`` (every stamp has the same length)."""
    return sum(len(orjson.dumps(record)) + 1 for record in validate_events(rows, OUTCOMES, application="storefront"))


def _kill_mid_write(routers: Routers, tmp: Path, rows: list[dict[str, Any]]) -> tuple[Path, bytes, list[int]]:
    """Post ``rows`` to a new router and SIGKILL it as soon as its segment has some of them; the
    segment, its bytes and the statuses the client got (none: the answer never came)."""
    router = routers.start()
    before = set(_segments(tmp))
    statuses: list[int] = []

    def send() -> None:
        try:
            statuses.append(_post(router, rows).status_code)
        except httpx.HTTPError:
            pass

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 60
    new: list[Path] = []
    while not new and time.monotonic() < deadline:  # the segment is made just before the write
        new = [p for p in _segments(tmp) if p not in before]
    path = str(new[0]) if new else ""
    while new and os.stat(path).st_size == 0 and time.monotonic() < deadline:
        pass
    router.proc.send_signal(signal.SIGKILL)
    router.proc.wait(10)
    sender.join(60)
    (segment,) = [p for p in _segments(tmp) if p not in before]
    return segment, segment.read_bytes(), statuses


def test_a_router_killed_mid_write_acknowledges_nothing_and_its_torn_line_stays_apart(routers: Routers, tmp_path: Path):
    rows = [event(event_id=f"batch-{i:06d}", request_id=f"request-{i:06d}") for i in range(50_000)]  # ~7.5 MB
    total = _size(rows)
    # A kill that lands after the write (during the fsync) tears nothing: then again, with a new router.
    # Here about one kill in three lands mid-write; twenty misses in a row would be a one-in-3000 event.
    for _attempt in range(20):
        segment, data, statuses = _kill_mid_write(routers, tmp_path, rows)
        assert statuses == []  # killed before it answered: nothing acknowledged
        if len(data) < total and not data.endswith(b"\n"):
            break
    else:
        pytest.fail(f"20 kills all landed after the {total}-byte write: no torn line to look at")
    *whole, torn = data.split(b"\n")
    assert [json.loads(line)["event_id"] for line in whole] == [row["event_id"] for row in rows[: len(whole)]]
    with pytest.raises(json.JSONDecodeError):
        json.loads(torn)  # the torn last line is not an event: a reader skips it
    # the next router's writer seals the dead segment (its whole lines become Parquet, the torn line is
    # dropped) and writes a segment of its own: the torn line never runs into a new event
    router = routers.start()
    assert _post(router, [event(event_id="after")]).json() == {"accepted": 1, "duplicates": 0}
    sealed = segment.with_suffix(".parquet")
    assert not segment.exists() and sealed.exists()
    with duckdb.connect() as db:
        stored = [row[0] for row in db.execute("SELECT event_id FROM read_parquet(?)", [str(sealed)]).fetchall()]
    assert stored == [json.loads(line)["event_id"] for line in whole]
    (fresh,) = [p for p in _segments(tmp_path) if b"after" in p.read_bytes()]
    assert [json.loads(line)["event_id"] for line in fresh.read_text().splitlines()] == ["after"]
