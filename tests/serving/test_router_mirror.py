"""The router's shadow step on real replicas: copies of a share of the requests go to the mirrored
version, their answers are compared with the live ones and logged, and nothing else changes.

`modelcat replica` processes serve three small ONNX models of one input ``x`` and two outputs, a
score (``x + offset``) and a label (``x > 0.5``): the base, a twin (the same function in other
bytes: a retrained model that learnt the same thing) and a far one (offset 1: its scores differ,
its labels do not). A `modelcat router` routes everything to the base and mirrors to the others.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from catalog.feedback.shadow import observe_shadow
from catalog.serving.mirror import mirror_draw
from catalog.serving.oip_grpc import inference_pb2 as pb
from tests.serving.replica_fixtures import RunningReplica, grpc_address, start_replica, write_model
from tests.serving.router_fixtures import (
    Fleet,
    RouterProcess,
    digest_of,
    metric,
    wait_for_assignments,
    wait_for_table,
    write_table,
)

pytestmark = pytest.mark.slow

APP, MODEL = "checkout", "scorer"
BASE, TWIN, FAR = "1.0.0", "1.1.0", "2.0.0"
ROWS = np.random.default_rng(11).uniform(0, 1, size=(3, 2)).astype(np.float32)


def _scorer(offset: float, note: str) -> onnx.ModelProto:
    """x FP32 [batch, 2] -> score = x + offset (FP32), label = x > 0.5 (BOOL)."""
    constants = [
        numpy_helper.from_array(np.array(offset, dtype=np.float32), "offset"),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "threshold"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "offset"], ["score"]),
            helper.make_node("Greater", ["x", "threshold"], ["label"]),
        ],
        "scorer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("label", TensorProto.BOOL, ["batch", 2]),
        ],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], doc_string=note)
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, RunningReplica]]]:
    """Per version: its digest and one running replica."""
    folder = tmp_path_factory.mktemp("models")
    models = {BASE: _scorer(0.0, "base"), TWIN: _scorer(0.0, "retrained: same function"), FAR: _scorer(1.0, "far")}
    with ExitStack() as stack:
        running = {}
        for version, model in models.items():
            artifact, digest = write_model(model, folder / f"{version}.onnx")
            replica = start_replica(MODEL, version, artifact, digest, extra_args=["--grpc-port", "0"])
            running[version] = (digest, stack.enter_context(replica))
        yield running


def _table(served: dict[str, tuple[str, RunningReplica]], mirror: dict[str, Any] | None) -> dict[str, Any]:
    routes = [
        {"version": v, "weight": 100 if v == BASE else 0, "digest": served[v][0], "replicas": [served[v][1].url],
         "grpc_replicas": [grpc_address(served[v][1])]}
        for v in (BASE, TWIN, FAR)
    ]  # fmt: skip
    model: dict[str, Any] = {"name": MODEL, "routes": routes}
    if mirror is not None:
        model["mirror"] = mirror
    return {"apiVersion": "modelcat/routing-v1", "application": APP, "models": [model]}


def _infer(client: httpx.Client, base: str, request_id: str, path: str = f"/v2/models/{MODEL}/infer") -> httpx.Response:
    body = {"inputs": [{"name": "x", "shape": list(ROWS.shape), "datatype": "FP32", "data": ROWS.ravel().tolist()}]}
    return client.post(f"{base}{path}", json=body, headers={"x-request-id": request_id})


def _shadow_lines(analytics: Path, at_least: int) -> list[dict[str, Any]]:
    return wait_for_assignments(analytics, APP, at_least, stream="shadow")


def _served(router: RouterProcess, version: str) -> float:
    """What the router's own metrics (the ones the telemetry reads) counted for ``version``."""
    requests = metric(router, "modelcat_router_requests_total", model=MODEL, version=version)
    return requests + metric(router, "modelcat_router_request_duration_seconds_count", model=MODEL, version=version)


def test_a_twin_agrees_on_every_copy_and_the_copies_are_no_assignments(
    served: dict[str, tuple[str, RunningReplica]], tmp_path: Path
) -> None:
    table, analytics = tmp_path / "table.json", tmp_path / "analytics"
    write_table(table, _table(served, {"version": TWIN, "percent": 100, "max_abs_difference": 0.0}))
    fleet = Fleet(tmp_path)
    try:
        router = fleet.router(table, analytics=analytics)
        ids = [f"twin-{i}" for i in range(40)]
        with httpx.Client(timeout=30, trust_env=False) as client:
            direct = client.post(
                f"{served[BASE][1].url}/v2/models/{MODEL}/versions/{BASE}/infer",
                json={"inputs": [{"name": "x", "shape": [3, 2], "datatype": "FP32", "data": ROWS.ravel().tolist()}]},
            ).json()
            answers = [_infer(client, router.url, rid) for rid in ids]
            pinned = _infer(client, router.url, "pinned-0", f"/v2/models/{MODEL}/versions/{BASE}/infer")
        for answer in answers:  # the live answer is the base's, untouched by the copy
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-model-version"] == BASE
            assert answer.json()["outputs"] == direct["outputs"]
        assert pinned.status_code == 200

        lines = _shadow_lines(analytics, len(ids))
        assert sorted(line["request_id"] for line in lines) == sorted(ids)  # every routed one, the pinned one not
        for line in lines:
            assert (line["live_version"], line["mirrored_version"], line["result"], line["agree"]) == (
                BASE,
                TWIN,
                "agree",
                True,
            )
            assert line["outputs"] == {"score": True, "label": True} and line["status"] == 200
            assert line["latency_ms"] > 0 and line["error"] is None

        assignments = wait_for_assignments(analytics, APP, len(ids) + 1)
        assert Counter((a["version"], a["assignment"]) for a in assignments) == {
            (BASE, "random"): len(ids),
            (BASE, "pinned"): 1,
        }
        assert metric(router, "modelcat_shadow_requests_total", model=MODEL, version=TWIN, result="agree") == len(ids)
        assert metric(router, "modelcat_shadow_request_duration_seconds_count", version=TWIN) == len(ids)
        assert _served(router, TWIN) == 0  # the copies are in none of the A/B test's counts
        assert metric(router, "modelcat_router_requests_total", model=MODEL, version=BASE) == len(ids) + 1

        assert router.terminate() == 0  # the shadow log's segment is closed: Parquet, read by the analysis
        assert list(analytics.glob("shadow/application=checkout/day=*/*.parquet"))
        assert not list(analytics.glob("shadow/application=checkout/day=*/*.jsonl"))
        counts = observe_shadow(analytics, APP, MODEL, TWIN)
        assert (counts.agreed, counts.disagreed, counts.errors, counts.dropped) == (len(ids), 0, 0, 0)
        assert counts.outputs == {"label": (len(ids), len(ids)), "score": (len(ids), len(ids))}
        assert counts.live_versions == {BASE: len(ids)}
    finally:
        fleet.close()


def test_a_different_model_disagrees_on_the_copies_its_percent_draws(
    served: dict[str, tuple[str, RunningReplica]], tmp_path: Path
) -> None:
    table, analytics = tmp_path / "table.json", tmp_path / "analytics"
    write_table(table, _table(served, None))
    fleet = Fleet(tmp_path)
    try:
        router = fleet.router(table, analytics=analytics)
        mirrored = _table(served, {"version": FAR, "percent": 30, "max_abs_difference": 0.05})
        wait_for_table(router, write_table(table, mirrored))
        ids = [f"far-{i}" for i in range(120)]
        drawn = [rid for rid in ids if mirror_draw(rid, MODEL, 30)]
        assert 0 < len(drawn) < len(ids)
        with httpx.Client(timeout=30, trust_env=False) as client:
            answers = [_infer(client, router.url, rid) for rid in ids]
        assert {(a.status_code, a.headers["x-model-version"]) for a in answers} == {(200, BASE)}

        lines = _shadow_lines(analytics, len(drawn))
        assert sorted(line["request_id"] for line in lines) == sorted(drawn)
        assert {(line["mirrored_version"], line["result"], line["agree"]) for line in lines} == {
            (FAR, "disagree", False)
        }
        assert all(
            line["outputs"] == {"score": False, "label": True} for line in lines
        )  # scores off by 1, labels equal
        assert metric(router, "modelcat_shadow_requests_total", version=FAR, result="disagree") == len(drawn)
        assert _served(router, FAR) == 0
        assert router.get("/routing")["models"][0]["mirror"] == {
            "version": FAR,
            "percent": 30,
            "max_abs_difference": 0.05,
        }
    finally:
        fleet.close()


def test_a_copy_that_fails_is_an_error_and_copies_beyond_the_bound_are_dropped_without_delaying_answers(
    tmp_path: Path,
) -> None:
    silent = socket.socket()  # a "replica" that accepts connections and never answers: its copies hang
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    fleet = Fleet(tmp_path)
    analytics, table = tmp_path / "analytics", tmp_path / "table.json"
    body = {"inputs": [{"name": "features", "shape": [1, 1], "datatype": "FP32", "data": [0.5]}]}
    try:
        (live,) = fleet.fakes("rec", [("1.0.0", "a")])

        def document(mirrored_replica: str) -> dict[str, Any]:
            routes = [
                {"version": "1.0.0", "weight": 100, "digest": digest_of("1.0.0"), "replicas": [live.url]},
                {"version": "2.0.0", "weight": 0, "digest": digest_of("2.0.0"), "replicas": [mirrored_replica]},
            ]
            model = {
                "name": "rec",
                "routes": routes,
                "mirror": {"version": "2.0.0", "percent": 100, "max_abs_difference": 0},
            }
            return {"apiVersion": "modelcat/routing-v1", "application": "shop", "models": [model]}

        write_table(table, document("http://127.0.0.1:9"))  # the discard port: nothing listens there
        router = fleet.router(table, "--mirror-max-in-flight", "2", "--timeout", "300", analytics=analytics)
        with httpx.Client(timeout=60, trust_env=False) as client:
            for n in range(1, 4):  # one at a time: each copy's line is written before the next request
                assert client.post(f"{router.url}/v2/models/rec/infer", json=body).status_code == 200
                _shadow_lines_of(analytics, n)
        errors = _shadow_lines_of(analytics, 3)
        assert {(line["result"], line["agree"], line["status"]) for line in errors} == {("error", None, None)}
        assert all("no replica of model 'rec' version 2.0.0 is reachable" in line["error"] for line in errors)
        assert metric(router, "modelcat_shadow_requests_total", version="2.0.0", result="error") == 3

        wait_for_table(router, write_table(table, document(f"http://127.0.0.1:{silent.getsockname()[1]}")))
        with httpx.Client(timeout=60, trust_env=False) as client:
            answers = [client.post(f"{router.url}/v2/models/rec/infer", json=body) for _ in range(12)]
        assert [a.status_code for a in answers] == [200] * 12  # answered while two copies hang
        assert [a.headers["x-model-version"] for a in answers] == ["1.0.0"] * 12
        dropped = [line for line in _shadow_lines_of(analytics, 13) if line["result"] == "dropped"]
        assert len(dropped) == 10 and {line["agree"] for line in dropped} == {None}
        assert metric(router, "modelcat_shadow_requests_total", version="2.0.0", result="dropped") == 10
        assert metric(router, "modelcat_router_requests_total", version="2.0.0") == 0
    finally:
        fleet.close()
        silent.close()


def _shadow_lines_of(analytics: Path, at_least: int) -> list[dict[str, Any]]:
    return wait_for_assignments(analytics, "shop", at_least, stream="shadow")


def test_grpc_requests_are_mirrored_compared_and_logged_as_http_ones(
    served: dict[str, tuple[str, RunningReplica]], tmp_path: Path
) -> None:
    """Through the router's gRPC side: a twin agrees on every copy, then (the table changed) a far
    model's scores disagree while its labels agree; pinned requests are never copied, and the live
    answers are the base's."""
    table, analytics = tmp_path / "table.json", tmp_path / "analytics"
    write_table(table, _table(served, {"version": TWIN, "percent": 100, "max_abs_difference": 0.0}))
    fleet = Fleet(tmp_path)
    try:
        router = fleet.router(table, "--grpc-port", "0", analytics=analytics)
        address = router.line.split("(gRPC on ", 1)[1].split(",", 1)[0]
        request = pb.ModelInferRequest(model_name=MODEL)
        request.inputs.add(name="x", datatype="FP32", shape=list(ROWS.shape))
        request.raw_input_contents.append(ROWS.astype("<f4").tobytes())
        pinned = pb.ModelInferRequest()
        pinned.CopyFrom(request)
        pinned.model_version = BASE
        with grpc.insecure_channel(address) as channel:
            infer = channel.unary_unary(
                "/inference.GRPCInferenceService/ModelInfer",
                request_serializer=pb.ModelInferRequest.SerializeToString,
                response_deserializer=pb.ModelInferResponse.FromString,
            )

            def send(ids: list[str], message: pb.ModelInferRequest = request) -> None:
                for rid in ids:
                    answer = infer(message, metadata=[("x-request-id", rid)], timeout=60)
                    assert answer.model_version == BASE
                    score = np.frombuffer(answer.raw_output_contents[0], dtype="<f4").reshape(ROWS.shape)
                    np.testing.assert_array_equal(score, ROWS)  # the base's own answer

            twins = [f"grpc-twin-{i}" for i in range(20)]
            send(twins)
            send(["grpc-pinned-0"], pinned)
            lines = _shadow_lines(analytics, len(twins))
            assert sorted(line["request_id"] for line in lines) == sorted(twins)
            assert {(line["mirrored_version"], line["result"], line["status"]) for line in lines} == {
                (TWIN, "agree", 200)
            }
            assert all(line["outputs"] == {"score": True, "label": True} for line in lines)

            wait_for_table(router, write_table(table, _table(served, {"version": FAR, "percent": 100,
                                                                       "max_abs_difference": 0.05})), timeout=60)  # fmt: skip
            fars = [f"grpc-far-{i}" for i in range(20)]
            send(fars)
        lines = [line for line in _shadow_lines(analytics, len(twins) + len(fars)) if line["request_id"] in fars]
        assert sorted(line["request_id"] for line in lines) == sorted(fars)
        for line in lines:
            assert (line["mirrored_version"], line["result"], line["agree"]) == (FAR, "disagree", False)
            assert line["outputs"] == {"score": False, "label": True}
        assert metric(router, "modelcat_shadow_requests_total", model=MODEL, version=FAR, result="disagree") == len(
            fars
        )
        assert _served(router, TWIN) == _served(router, FAR) == 0  # copies are no assignments
    finally:
        fleet.close()
