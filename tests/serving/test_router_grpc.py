"""The router over gRPC (``modelcat router --grpc-port``): tritonclient.grpc through the router gets what
onnxruntime computes; requests split by the table's weights, stick by the key in their metadata as
HTTP's do by header, pin a version by ``model_version``; each is logged and counted as an HTTP one is;
refusals carry their code and reason."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from catalog.domain.routing import bucket_of, bucket_table, key_hash, pick_version
from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.oip_grpc.inference_pb2_grpc import GRPCInferenceServiceStub
from tests.serving.oip_grpc_clients import run_client
from tests.serving.replica_fixtures import client_types_model, grpc_address, slow_model, start_replica, write_model
from tests.serving.router_fixtures import Fleet, RouterProcess, logged_assignments, metric, write_table
from tests.serving.test_replica_grpc import (
    BAD,
    UNPARSABLE,
    assert_client_matches_onnxruntime,
    assert_invalid_argument_then_still_serving,
    assert_model_config_is_unimplemented_naming_model_metadata,
    assert_same,
    bad_request,
    inputs,
    local_run,
    raw_request,
)
from tests.serving.test_replica_shutdown import SIZE, calibrated_iterations, start_in_flight

pytestmark = pytest.mark.slow

MODEL, V1, V2, V3 = "kinds", "1.0.0", "2.0.0", "3.0.0"
LIMIT = 64 << 10  # the router's --max-request-bytes here
APP = "shop"


@dataclass
class Routed:
    router: RouterProcess
    address: str  # the router's gRPC address
    stub: GRPCInferenceServiceStub
    model: bytes
    analytics: Path
    digests: dict[str, str]
    replicas: dict[str, str]  # version -> the replica's gRPC address


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routed]:
    folder = tmp_path_factory.mktemp("router-grpc")
    one = client_types_model()
    two = client_types_model()
    two.doc_string = "the same graph, other bytes: another version"
    path1, digest1 = write_model(one, folder / "v1.onnx")
    path2, digest2 = write_model(two, folder / "v2.onnx")
    digest3 = "sha256:" + "3" * 64
    grpc_port = ["--grpc-port", "0"]
    with (
        start_replica(MODEL, V1, path1, digest1, extra_args=grpc_port) as r1,
        start_replica(MODEL, V2, path2, digest2, extra_args=grpc_port) as r2,
    ):
        g1, g2 = grpc_address(r1), grpc_address(r2)
        routes = [
            {"version": V1, "weight": 50, "digest": digest1, "replicas": [r1.url], "grpc_replicas": [g1]},
            {"version": V2, "weight": 50, "digest": digest2, "replicas": [r2.url], "grpc_replicas": [g2]},
            {"version": V3, "weight": 0, "digest": digest3, "replicas": []},
        ]
        table = {
            "apiVersion": "modelcat/routing-v1",
            "application": APP,
            "sticky_key": "x-user-id",
            "outcomes": {"converted": "label"},
            "models": [
                {"name": MODEL, "routes": routes},
                # served over HTTP only: no gRPC address
                {"name": "http-only", "routes": [{"version": V1, "weight": 100, "digest": digest1, "replicas": [r1.url]}]},
                # the table says 1.5.0, the replica serves 1.0.0
                {"name": "crossed", "routes": [{"version": "1.5.0", "weight": 100, "digest": digest1,
                                                "replicas": [r1.url], "grpc_replicas": [g1]}]},
            ],
        }  # fmt: skip
        write_table(folder / "table.json", table)
        fleet = Fleet(folder)
        try:
            args = ["--grpc-port", "0", "--max-request-bytes", str(LIMIT)]
            router = fleet.router(folder / "table.json", *args, analytics=folder / "analytics")
            found = re.search(r"\(gRPC on (\S+), table ", router.line)
            assert found, router.line
            channel = grpc.insecure_channel(found.group(1))
            yield Routed(
                router, found.group(1), GRPCInferenceServiceStub(channel), path1.read_bytes(), folder / "analytics",
                {V1: digest1, V2: digest2, V3: digest3}, {V1: g1, V2: g2},
            )  # fmt: skip
            channel.close()
        finally:
            fleet.close()


def triton_calls(routed: Routed, calls: list[dict[str, Any]], tmp_path: Path) -> tuple[list[dict[str, Any]], dict]:
    """tritonclient.grpc's answers to ``calls`` through the router (its own process: see oip_grpc_clients)."""
    (tmp_path / "calls.json").write_text(json.dumps(calls))
    return run_client(["triton-calls", routed.address, str(tmp_path / "calls.json")], inputs(), tmp_path)


def logged(routed: Routed | Path, *request_ids: str, timeout: float = 60) -> dict[str, dict[str, Any]]:
    """The assignment lines of ``request_ids``, by request id, once all are logged (under ``routed``'s
    analytics folder, or that folder)."""
    analytics = routed if isinstance(routed, Path) else routed.analytics
    deadline = time.monotonic() + timeout
    while True:
        lines = {line["request_id"]: line for line in logged_assignments(analytics, APP)}
        if all(rid in lines for rid in request_ids) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_router_reports_its_grpc_address_with_its_url(routed: Routed) -> None:
    assert re.fullmatch(r"127\.0\.0\.1:\d+", routed.address) and not routed.address.endswith(":0")
    assert routed.stub.ServerLive(pb.ServerLiveRequest()).live
    assert routed.stub.ServerReady(pb.ServerReadyRequest()).ready
    assert routed.stub.ServerMetadata(pb.ServerMetadataRequest()).name == "modelcat-router"


@pytest.mark.parametrize("change", list(BAD))
def test_each_bad_grpc_request_through_the_router_is_invalid_argument_with_the_replicas_reason(
    routed: Routed, change: str
) -> None:
    with grpc.insecure_channel(routed.address) as channel:
        message = bad_request(inputs(), change).SerializeToString()
        assert_invalid_argument_then_still_serving(channel, routed.model, "ModelInfer", message, BAD[change])


@pytest.mark.parametrize("broken", list(UNPARSABLE))
def test_a_message_that_does_not_parse_is_invalid_argument_through_the_router(routed: Routed, broken: str) -> None:
    call, data = UNPARSABLE[broken]
    with grpc.insecure_channel(routed.address) as channel:
        assert_invalid_argument_then_still_serving(
            channel, routed.model, call, data, f"the request is not a {call}Request message"
        )


def test_tritons_model_config_call_through_the_router_is_unimplemented_naming_model_metadata(routed: Routed) -> None:
    with grpc.insecure_channel(routed.address) as channel:
        assert_model_config_is_unimplemented_naming_model_metadata(channel)


@pytest.mark.parametrize("client", ["triton", "kserve"])
def test_third_party_grpc_clients_through_the_router_match_onnxruntime(
    routed: Routed, client: str, tmp_path: Path
) -> None:
    assert_client_matches_onnxruntime(client, routed.address, V2, routed.model, tmp_path)


def test_grpc_requests_split_by_weight_and_stick_by_metadata_key_as_http_ones(routed: Routed, tmp_path: Path) -> None:
    keys = [f"user-{i}" for i in range(16)]
    calls = [
        {"model": MODEL, "headers": {"x-user-id": key, "x-request-id": f"sticky-{i}"}} for i, key in enumerate(keys)
    ]
    calls += [{"model": MODEL, "headers": {"x-user-id": key}} for key in keys]  # each key twice
    calls += [{"model": MODEL, "headers": {"x-request-id": f"random-{i}"}} for i in range(60)]
    answers, _ = triton_calls(routed, calls, tmp_path)
    assert all(a["status"] == "OK" for a in answers), answers
    slots = bucket_table([(V1, 50), (V2, 50), (V3, 0)])
    expected = [pick_version(slots, key, salt=MODEL).version for key in keys]
    assert [a["version"] for a in answers[:32]] == expected + expected
    with httpx.Client(trust_env=False, timeout=30) as http:  # the same key over HTTP: the same version
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0, 1, 2, 3]}]}
        for key, version in list(zip(keys, expected, strict=True))[:4]:
            answer = http.post(f"{routed.router.url}/v2/models/{MODEL}/infer", json=body, headers={"x-user-id": key})
            assert answer.headers["x-model-version"] == version  # (a 400: the other inputs are missing)
    assert {a["version"] for a in answers[32:]} == {V1, V2}  # 60 fair coin flips: both sides, but for 2^-59
    lines = logged(routed, *(f"sticky-{i}" for i in range(16)), "random-0")
    for i, key in enumerate(keys):
        line = lines[f"sticky-{i}"]
        assert (line["assignment"], line["bucket"], line["key_hash"]) == (
            "sticky",
            bucket_of(key, MODEL),
            key_hash(key),
        )
        assert (line["version"], line["status"], line["digest"]) == (expected[i], 200, routed.digests[expected[i]])
        assert line["replica"] == f"grpc://{routed.replicas[expected[i]]}"
    line = lines["random-0"]
    assert (line["assignment"], line["bucket"], line["key_hash"]) == ("random", None, None)
    first = float(2 * inputs()["x"].reshape(-1)[0])  # x_out = x + x, the first output
    assert line["prediction"] == pytest.approx(first)


def test_a_grpc_request_naming_a_version_is_pinned_to_it(routed: Routed, tmp_path: Path) -> None:
    before = metric(routed.router, "modelcat_router_assignments_total", model=MODEL, version=V2, how="pinned")
    calls = [
        {"model": MODEL, "version": V2, "headers": {"x-user-id": "u", "x-request-id": f"pinned-{i}"}} for i in range(5)
    ]
    answers, outputs = triton_calls(routed, calls, tmp_path)
    assert [a["version"] for a in answers] == [V2] * 5
    assert_same(outputs, local_run(routed.model, inputs()))
    lines = logged(routed, "pinned-0")
    assert (lines["pinned-0"]["assignment"], lines["pinned-0"]["key_hash"]) == ("pinned", None)
    after = metric(routed.router, "modelcat_router_assignments_total", model=MODEL, version=V2, how="pinned")
    assert after - before == 5


def test_grpc_refusals_carry_their_code_and_reason(routed: Routed, tmp_path: Path) -> None:
    calls = [
        {"model": "unknown"},
        {"model": MODEL, "version": "9.9.9"},
        {"model": MODEL, "version": V3},  # routed at weight 0, with no replica
        {"model": "http-only"},
        {"model": "crossed"},
    ]
    answers, _ = triton_calls(routed, calls, tmp_path)
    assert [a["status"] for a in answers] == ["StatusCode.NOT_FOUND"] * 2 + ["StatusCode.UNAVAILABLE"] * 3
    assert "model 'unknown' is not routed by application 'shop'" in answers[0]["message"]
    assert f"model '{MODEL}' has no version 9.9.9 in the routing table" in answers[1]["message"]
    assert f"model '{MODEL}' version {V3} has no replicas in the routing table" in answers[2]["message"]
    assert "model 'http-only' version 1.0.0 has no gRPC replicas in the routing table" in answers[3]["message"]
    assert f"no replica of model 'crossed' version 1.5.0 serves {routed.digests[V1]}" in answers[4]["message"]
    assert "serves version 1.0.0, not 1.5.0" in answers[4]["message"]


def test_a_replicas_own_grpc_error_is_passed_through_and_logged(routed: Routed) -> None:
    request = raw_request({"x": inputs()["x"]}, id="half-request")  # the other inputs missing
    with pytest.raises(grpc.RpcError) as refused:
        routed.stub.ModelInfer(request, metadata=[("x-request-id", "half-request")])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing input(s) 'h', 'c', 's', 'b'" in (refused.value.details() or "")
    line = logged(routed, "half-request").get("half-request")
    assert line is not None and (line["status"], line["prediction"]) == (400, None)


def test_a_grpc_message_over_the_limit_is_refused_with_both_sizes(routed: Routed) -> None:
    feeds = inputs() | {"x": np.zeros((LIMIT // 16 + 1, 4), dtype=np.float32)}
    with pytest.raises(grpc.RpcError) as refused:
        routed.stub.ModelInfer(raw_request(feeds))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(
        rf"the request message is [\d,]+ bytes, over the router's limit of {LIMIT:,}", refused.value.details() or ""
    )
    feeds = inputs() | {"x": np.zeros((LIMIT // 4 + 1, 4), dtype=np.float32)}  # past twice the limit
    with pytest.raises(grpc.RpcError) as dropped:
        routed.stub.ModelInfer(raw_request(feeds))
    assert dropped.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert routed.stub.ModelInfer(raw_request(inputs())).outputs  # still answering


def test_a_message_that_is_no_request_is_invalid_argument(routed: Routed) -> None:
    channel = grpc.insecure_channel(routed.address)
    call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    with pytest.raises(grpc.RpcError) as refused:
        call(b"\x0a\x10short")  # field 1 claims 16 bytes, 5 follow
    channel.close()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a ModelInferRequest message: field 1 runs past the end" in (refused.value.details() or "")


def test_grpc_answers_carry_the_request_id_and_the_versions_identity(routed: Routed) -> None:
    request = raw_request(inputs())
    answer, call = routed.stub.ModelInfer.with_call(request, metadata=[("x-request-id", "rid-7"), ("x-user-id", "u")])
    said = dict(call.trailing_metadata())
    version = answer.model_version
    assert said == {
        "x-request-id": "rid-7",
        "x-model-name": MODEL,
        "x-model-version": version,
        "x-model-digest": routed.digests[version],
    }
    _, call = routed.stub.ModelInfer.with_call(request, metadata=[("x-request-id", "bad id")])
    assert re.fullmatch(r"[0-9a-f]{32}", dict(call.trailing_metadata())["x-request-id"])


def test_grpc_metadata_and_readiness_go_to_the_primary_or_the_keyed_version(routed: Routed) -> None:
    metadata = routed.stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL))
    assert list(metadata.versions) == [V1]  # the first of the largest weights
    assert routed.stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL, version=V2)).versions == [V2]
    slots = bucket_table([(V1, 50), (V2, 50), (V3, 0)])
    key = next(k for k in (f"k{i}" for i in range(100)) if pick_version(slots, k, salt=MODEL).version == V2)
    keyed = routed.stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL), metadata=[("x-user-id", key)])
    assert list(keyed.versions) == [V2]
    assert routed.stub.ModelReady(pb.ModelReadyRequest(name=MODEL, version=V2)).ready


def test_grpc_inference_is_counted_in_the_routers_metrics(routed: Routed) -> None:
    def count() -> float:
        return sum(
            metric(
                routed.router, "modelcat_router_requests_total", model=MODEL, version=v, endpoint="infer", code="200"
            )
            for v in (V1, V2)
        )

    before = count()
    for _ in range(3):
        routed.stub.ModelInfer(raw_request(inputs()))
    assert count() - before == 3


def test_a_grpc_replica_that_cannot_be_reached_is_skipped_for_the_next(routed: Routed, tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{closed.getsockname()[1]}"
    route = {"version": V1, "weight": 100, "digest": routed.digests[V1], "replicas": ["http://127.0.0.1:1"],
             "grpc_replicas": [dead, routed.replicas[V1]]}  # fmt: skip
    write_table(tmp_path / "table.json", {"apiVersion": "modelcat/routing-v1", "application": APP,
                                          "models": [{"name": MODEL, "routes": [route]}]})  # fmt: skip
    fleet = Fleet(tmp_path)
    try:
        router = fleet.router(tmp_path / "table.json", "--grpc-port", "0")
        address = re.search(r"\(gRPC on (\S+), table ", router.line).group(1)  # type: ignore[union-attr]
        with grpc.insecure_channel(address) as channel:
            stub = GRPCInferenceServiceStub(channel)
            answers = [stub.ModelInfer(raw_request(inputs()), timeout=60) for _ in range(4)]
        assert [a.model_version for a in answers] == [V1] * 4
        assert metric(router, "modelcat_router_upstream_errors_total", model=MODEL, version=V1, kind="connect") >= 1
        [replicas] = [r["grpc_replicas"] for m in router.get("/routing")["models"] for r in m["routes"]]
        assert [r["address"] for r in replicas] == [dead, routed.replicas[V1]]  # GET /routing lists them
    finally:
        fleet.close()


def test_a_grpc_port_in_use_stops_the_router_with_exit_2(tmp_path: Path) -> None:
    route = {"version": V1, "weight": 100, "digest": "sha256:" + "1" * 64, "replicas": ["http://127.0.0.1:1"]}
    write_table(tmp_path / "table.json", {"apiVersion": "modelcat/routing-v1", "application": APP,
                                          "models": [{"name": MODEL, "routes": [route]}]})  # fmt: skip
    with socket.socket() as taken:  # held as another gRPC server holds it: gRPC's default would share it
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fleet = Fleet(tmp_path)
        try:
            router = fleet.router(tmp_path / "table.json", "--grpc-port", str(port), wait=False)
            assert router.proc.wait(60) == 2
        finally:
            fleet.close()
    assert f"cannot listen for gRPC on 127.0.0.1:{port}" in router.stderr()


def test_a_grpc_call_in_flight_when_the_router_stops_is_answered_and_logged(tmp_path: Path) -> None:
    path, digest = write_model(slow_model(SIZE), tmp_path / "slow.onnx")
    with start_replica("slow", V1, path, digest, extra_args=["--grpc-port", "0"]) as running:
        route = {"version": V1, "weight": 100, "digest": digest, "replicas": [running.url],
                 "grpc_replicas": [grpc_address(running)]}  # fmt: skip
        write_table(tmp_path / "table.json", {"apiVersion": "modelcat/routing-v1", "application": APP,
                                              "models": [{"name": "slow", "routes": [route]}]})  # fmt: skip
        fleet = Fleet(tmp_path)
        try:
            router = fleet.router(tmp_path / "table.json", "--grpc-port", "0", analytics=tmp_path / "analytics")
            address = re.search(r"\(gRPC on (\S+), table ", router.line).group(1)  # type: ignore[union-attr]
            with httpx.Client(base_url=running.url, timeout=60.0) as client:
                iterations = np.array(calibrated_iterations(client), dtype=np.int64)
                request = raw_request({"x": np.full((1, SIZE), 0.5, dtype=np.float32), "iterations": iterations})
                request.model_name = "slow"
                outcome: dict[str, Any] = {}

                def send() -> None:
                    with grpc.insecure_channel(address) as channel:
                        call = GRPCInferenceServiceStub(channel).ModelInfer
                        outcome["answer"] = call(request, metadata=[("x-request-id", "in-flight")], timeout=60)

                worker = start_in_flight(client, send)
                assert router.terminate(timeout=60) == 0
                worker.join(60)
        finally:
            fleet.close()
    assert [o.name for o in outcome["answer"].outputs] == ["y"]
    [line] = [line for line in logged_assignments(tmp_path / "analytics", APP) if line["request_id"] == "in-flight"]
    assert (line["status"], line["replica"]) == (200, f"grpc://{route['grpc_replicas'][0]}")


def test_a_replica_slower_than_the_timeout_is_deadline_exceeded_and_the_router_stays_up(tmp_path: Path) -> None:
    """A request calibrated to run about 5 s on the replica, through a router whose --timeout is 0.5 s:
    DEADLINE_EXCEEDED naming the model, version and replica, logged as 504 and counted as a timeout;
    the router answers the next call (a slower machine only widens the margin)."""
    path, digest = write_model(slow_model(SIZE), tmp_path / "slow.onnx")
    with start_replica("slow", V1, path, digest, extra_args=["--grpc-port", "0"]) as running:
        replica = grpc_address(running)
        route = {"version": V1, "weight": 100, "digest": digest, "replicas": [running.url], "grpc_replicas": [replica]}
        write_table(tmp_path / "table.json", {"apiVersion": "modelcat/routing-v1", "application": APP,
                                              "models": [{"name": "slow", "routes": [route]}]})  # fmt: skip
        fleet = Fleet(tmp_path)
        try:
            router = fleet.router(
                tmp_path / "table.json", "--grpc-port", "0", "--timeout", "0.5", analytics=tmp_path / "analytics"
            )
            address = re.search(r"\(gRPC on (\S+), table ", router.line).group(1)  # type: ignore[union-attr]
            with httpx.Client(base_url=running.url, timeout=60.0) as client:
                iterations = np.array(calibrated_iterations(client, seconds=5.0), dtype=np.int64)
            request = raw_request({"x": np.full((1, SIZE), 0.5, dtype=np.float32), "iterations": iterations})
            request.model_name = "slow"
            with grpc.insecure_channel(address) as channel:
                stub = GRPCInferenceServiceStub(channel)
                with pytest.raises(grpc.RpcError) as refused:
                    stub.ModelInfer(request, metadata=[("x-request-id", "too-slow")], timeout=60)
                assert refused.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert refused.value.details() == f"model 'slow' version {V1} did not answer in time ({replica})"
                assert stub.ServerLive(pb.ServerLiveRequest(), timeout=60).live
            assert logged(tmp_path / "analytics", "too-slow")["too-slow"]["status"] == 504
            assert metric(router, "modelcat_router_upstream_errors_total", kind="timeout") == 1
        finally:
            fleet.close()
