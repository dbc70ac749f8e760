"""The router in front of real replicas (not fakes): the bytes that answer are the catalog's.

Three `modelcat replica` processes serve the demo's fraud-scorer (two of 1.3.0, one of 1.4.0); a
`modelcat router` splits keyed traffic 90/10. Every answer must come from the version the router
names, carry that version's digest, and equal what onnxruntime computes in-process from the same
artifact. Killing a replica of 1.3.0 must cost no request; a replica that serves other bytes than
the table names must never answer.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from catalog.validate import load_catalog
from tests.helpers import DEMO, ROOT
from tests.serving.replica_fixtures import RunningReplica, start_replica
from tests.serving.router_fixtures import Fleet, metric, wait_for_assignments, write_table

pytestmark = pytest.mark.slow

MODEL, STABLE, CANARY, OTHER = "fraud-scorer", "1.3.0", "1.4.0", "1.2.0"
ROWS = np.random.default_rng(7).normal(size=(4, 16)).astype(np.float32)


def _artifacts() -> dict[str, tuple[Path, str]]:
    catalog = load_catalog(DEMO)
    model = next(m for m in catalog.models if m.name == MODEL)
    return {v.version: (ROOT / v.artifact.uri, v.artifact.digest) for v in model.versions}


ARTIFACTS = _artifacts()


@pytest.fixture(scope="module")
def replicas() -> Iterator[dict[str, list[RunningReplica]]]:
    with ExitStack() as stack:
        running = {
            version: [stack.enter_context(start_replica(MODEL, version, *ARTIFACTS[version])) for _ in range(n)]
            for version, n in ((STABLE, 2), (CANARY, 1), (OTHER, 1))
        }
        yield running


def _table(routes: list[tuple[str, int, list[str]]]) -> dict:
    return {
        "apiVersion": "modelcat/routing-v1",
        "application": "checkout",
        "sticky_key": "x-user-id",
        "models": [
            {
                "name": MODEL,
                "routes": [
                    {"version": v, "weight": w, "digest": ARTIFACTS[v][1], "replicas": urls} for v, w, urls in routes
                ],
            }
        ],
    }


def _expected(version: str) -> np.ndarray:
    session = ort.InferenceSession(str(ARTIFACTS[version][0]), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: ROWS})
    return output


def _infer(client: httpx.Client, base: str, key: str) -> httpx.Response:
    body = {
        "inputs": [{"name": "features", "shape": list(ROWS.shape), "datatype": "FP32", "data": ROWS.ravel().tolist()}]
    }
    return client.post(f"{base}/v2/models/{MODEL}/infer", json=body, headers={"x-user-id": key})


def _outputs(response: httpx.Response) -> np.ndarray:
    (tensor,) = response.json()["outputs"]
    return np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])


def test_answers_come_from_the_named_version_with_its_digest_and_its_outputs(
    replicas: dict[str, list[RunningReplica]], tmp_path: Path
) -> None:
    table = tmp_path / "table.json"
    stable_urls = [r.url for r in replicas[STABLE]]
    write_table(table, _table([(STABLE, 90, stable_urls), (CANARY, 10, [replicas[CANARY][0].url])]))
    expected = {v: _expected(v) for v in (STABLE, CANARY)}
    fleet = Fleet(tmp_path)
    try:
        router = fleet.router(table, analytics=tmp_path / "analytics")
        keys = [f"user-{i}" for i in range(400)]
        seen: dict[str, set[str]] = {}
        with httpx.Client(timeout=30, trust_env=False) as client:
            for round_ in range(2):
                if round_ == 1:  # lose a replica of the stable version: its users must not notice
                    replicas[STABLE][0].process.send_signal(signal.SIGKILL)
                    replicas[STABLE][0].process.wait(10)
                for key in keys:
                    response = _infer(client, router.url, key)
                    assert response.status_code == 200, response.text
                    version = response.headers["x-model-version"]
                    assert response.headers["x-model-digest"] == ARTIFACTS[version][1]
                    assert response.json()["model_version"] == version
                    np.testing.assert_allclose(_outputs(response), expected[version], rtol=1e-5, atol=1e-6)
                    seen.setdefault(key, set()).add(version)
        assert all(len(versions) == 1 for versions in seen.values())
        share = Counter(next(iter(v)) for v in seen.values())
        assert 0.05 <= share[CANARY] / len(keys) <= 0.15, share
        assert metric(router, "modelcat_router_assignments_total", model=MODEL, version=CANARY, how="sticky") == (
            2 * share[CANARY]
        )
        logged = wait_for_assignments(tmp_path / "analytics", "checkout", 2 * len(keys))
        assert Counter(entry["version"] for entry in logged) == {v: 2 * n for v, n in share.items()}
    finally:
        fleet.close()


def test_a_replica_serving_other_bytes_never_answers(replicas: dict[str, list[RunningReplica]], tmp_path: Path) -> None:
    # the table says CANARY, but its only listed replica serves OTHER: refuse, never relabel
    table = tmp_path / "table.json"
    write_table(table, _table([(STABLE, 50, [replicas[STABLE][1].url]), (CANARY, 50, [replicas[OTHER][0].url])]))
    fleet = Fleet(tmp_path)
    try:
        router = fleet.router(table)
        with httpx.Client(timeout=30, trust_env=False) as client:
            answers = [_infer(client, router.url, f"user-{i}") for i in range(60)]
        wrong = [a for a in answers if a.status_code == 200 and a.headers["x-model-version"] != STABLE]
        assert not wrong
        refused = [a for a in answers if a.status_code != 200]
        assert refused
        for answer in refused:  # a bad gateway that names what was asked for and what is served
            error = answer.json()["error"]
            assert answer.status_code == 502 and CANARY in error and ARTIFACTS[CANARY][1] in error, error
            assert f"serves version {OTHER}" in error
    finally:
        fleet.close()
