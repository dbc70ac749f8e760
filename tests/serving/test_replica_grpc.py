"""The replica over gRPC (``modelcat replica --grpc-port``): the six calls of
``inference.GRPCInferenceService``, raw and typed contents checked as REST's are, every bad request
INVALID_ARGUMENT with its reason while the server stays up, and Triton's and KServe's gRPC clients
(with their defaults) getting what onnxruntime computes in process."""

from __future__ import annotations

import hashlib
import re
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import onnxruntime as ort
import pytest

from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.oip_grpc.inference_pb2_grpc import GRPCInferenceServiceStub
from tests.serving.oip_grpc_clients import run_client
from tests.serving.replica_fixtures import (
    ReplicaExited,
    client_types_model,
    grpc_address,
    start_replica,
    write_model,
)

LIMIT = 64 << 10  # the replica's --max-request-bytes here
MODEL, VERSION = "kinds", "1.0.0"


class Replica:
    def __init__(self, url: str, address: str, model: bytes, lines: list[str]) -> None:
        self.url, self.address, self.model, self.lines = url, address, model, lines
        self.channel = grpc.insecure_channel(address)
        self.stub = GRPCInferenceServiceStub(self.channel)


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    path, digest = write_model(client_types_model(), tmp_path_factory.mktemp("grpc") / "kinds.onnx")
    extra = ["--grpc-port", "0", "--max-request-bytes", str(LIMIT)]
    with start_replica(MODEL, VERSION, path, digest, extra_args=extra) as running:
        served = Replica(running.url, grpc_address(running), path.read_bytes(), running.process.lines)
        yield served
        served.channel.close()


def inputs() -> dict[str, np.ndarray]:
    return {
        "x": np.arange(8, dtype=np.float32).reshape(2, 4) / 3,
        "h": np.array([0.5, -1.25, 3.0], dtype=np.float16),
        "c": np.array([1, -2, 2**40], dtype=np.int64),
        "s": np.array(["café".encode(), b"", b"ok"], dtype=object),
        "b": np.array([True, False], dtype=np.bool_),
    }


def local_run(model: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    feeds = {k: (np.array([x.decode() for x in v], dtype=object) if k == "s" else v) for k, v in feeds.items()}
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for name, expected in want.items():
        actual = got[name]
        if expected.dtype == object:
            assert [x.decode() if isinstance(x, bytes) else x for x in actual.tolist()] == expected.tolist(), name
        else:
            assert actual.dtype == expected.dtype and actual.shape == expected.shape, name
            np.testing.assert_array_equal(actual, expected, err_msg=name)


DATATYPES = {"float32": "FP32", "float16": "FP16", "int64": "INT64", "object": "BYTES", "bool": "BOOL"}


def raw(array: np.ndarray) -> bytes:
    if array.dtype == object:
        return b"".join(struct.pack("<I", len(x)) + x for x in array.tolist())
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def raw_request(feeds: dict[str, np.ndarray], **fields: object) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=MODEL, **fields)  # type: ignore[arg-type]
    for name, array in feeds.items():
        request.inputs.add(name=name, datatype=DATATYPES[array.dtype.name], shape=array.shape)
        request.raw_input_contents.append(raw(array))
    return request


def decoded(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    arrays = {}
    for tensor, data in zip(response.outputs, response.raw_output_contents, strict=True):
        if tensor.datatype == "BYTES":
            items, offset = [], 0
            while offset < len(data):
                (n,) = struct.unpack_from("<I", data, offset)
                items.append(data[offset + 4 : offset + 4 + n])
                offset += 4 + n
            arrays[tensor.name] = np.array(items, dtype=object).reshape(tensor.shape)
        else:
            dtype = {"FP32": np.float32, "FP16": np.float16, "INT64": np.int64, "BOOL": np.bool_}[tensor.datatype]
            arrays[tensor.name] = np.frombuffer(data, dtype=dtype).reshape(tensor.shape)
    return arrays


def test_replica_reports_its_grpc_address_with_its_url(replica: Replica) -> None:
    line = next(line for line in replica.lines if " listening on " in line)
    assert f"gRPC on {replica.address}, listening on http://127.0.0.1:" in line
    assert re.fullmatch(r"127\.0\.0\.1:\d+", replica.address) and not replica.address.endswith(":0")


def test_grpc_health_and_metadata(replica: Replica) -> None:
    stub = replica.stub
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL, version=VERSION)).ready
    server = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert server.name == "modelcat-replica"
    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL))
    assert (metadata.name, list(metadata.versions), metadata.platform) == (MODEL, [VERSION], "onnxruntime_onnx")
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs][:2] == [
        ("x", "FP32", [-1, 4]),
        ("h", "FP16", [-1]),
    ]
    assert metadata.properties["model_digest"].startswith("sha256:")


@pytest.mark.parametrize("call", ["ModelReady", "ModelMetadata"])
def test_grpc_names_another_model_or_version_not_found(replica: Replica, call: str) -> None:
    message = {"ModelReady": pb.ModelReadyRequest, "ModelMetadata": pb.ModelMetadataRequest}[call]
    for name, version in (("other", ""), (MODEL, "9.9.9")):
        with pytest.raises(grpc.RpcError) as refused:
            getattr(replica.stub, call)(message(name=name, version=version))
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert "not served here" in refused.value.details()


def test_grpc_infer_with_raw_contents_matches_onnxruntime(replica: Replica) -> None:
    response = replica.stub.ModelInfer(raw_request(inputs(), id="r-1"))
    assert (response.model_name, response.model_version, response.id) == (MODEL, VERSION, "r-1")
    assert_same(decoded(response), local_run(replica.model, inputs()))


def test_grpc_infer_reads_raw_contents_wherever_they_come_in_the_message(replica: Replica) -> None:
    """The replica cuts raw_input_contents out of the bytes it receives (to read them without a
    copy); protobuf writes them after the inputs, but a message's fields may come in any order."""
    request = raw_request(inputs(), id="r-2")
    contents = list(request.raw_input_contents)
    request.ClearField("raw_input_contents")
    first = pb.ModelInferRequest(raw_input_contents=contents[:2]).SerializeToString()
    last = pb.ModelInferRequest(raw_input_contents=contents[2:]).SerializeToString()
    message = first + request.SerializeToString() + last
    infer = replica.channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer", response_deserializer=pb.ModelInferResponse.FromString
    )
    response = infer(message)
    assert response.id == "r-2"
    assert_same(decoded(response), local_run(replica.model, inputs()))


def typed_feeds() -> dict[str, np.ndarray]:
    """inputs() as typed contents can carry them: FP16 has no typed field (raw only), so h is empty."""
    return {k: v for k, v in inputs().items() if k != "h"} | {"h": np.zeros(0, dtype=np.float16)}


def typed_request(feeds: dict[str, np.ndarray]) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=MODEL)
    fields = {"x": "fp32_contents", "c": "int64_contents", "s": "bytes_contents", "b": "bool_contents"}
    for name, array in feeds.items():
        tensor = request.inputs.add(name=name, datatype=DATATYPES[array.dtype.name], shape=array.shape)
        if name in fields:
            getattr(tensor.contents, fields[name]).extend(array.reshape(-1).tolist())
    return request


def test_grpc_infer_with_typed_contents_matches_onnxruntime(replica: Replica) -> None:
    request = typed_request(typed_feeds())
    request.outputs.add(name="x_out")
    response = replica.stub.ModelInfer(request)
    assert [o.name for o in response.outputs] == ["x_out"]
    assert_same(decoded(response), {"x_out": local_run(replica.model, typed_feeds())["x_out"]})


def bad_request(feeds: dict[str, np.ndarray], change: str) -> pb.ModelInferRequest:
    if change.startswith("typed"):
        request = typed_request(typed_feeds())
        if change == "typed contents disagree with the shape":
            del request.inputs[0].contents.fp32_contents[-1]
        elif change == "typed FP16 contents":
            request.inputs[-1].shape[:] = [1]
            request.inputs[-1].contents.fp32_contents.append(1.0)
        elif change == "typed bytes not utf-8":
            request.inputs[2].contents.bytes_contents[0] = b"\xff"
        return request
    request = raw_request(feeds)
    if change == "not a multiple":
        request.raw_input_contents[0] = request.raw_input_contents[0][:-1]
    elif change == "disagrees with the shape":
        request.raw_input_contents[0] += b"\0" * 4
    elif change == "shorter than the shape":
        request.raw_input_contents[0] = request.raw_input_contents[0][:-4]
    elif change == "BYTES length cut short":
        request.raw_input_contents[3] = struct.pack("<I", 2) + b"ab" + b"\0\0"
    elif change == "BYTES not utf-8":
        request.raw_input_contents[3] = b"".join(struct.pack("<I", 1) + b for b in (b"\xff", b"a", b"b"))
    elif change == "BOOL byte not 0 or 1":
        request.raw_input_contents[4] = b"\x01\x02"
    elif change == "BYTES past its tensor":
        request.raw_input_contents[3] = struct.pack("<I", 99) + b"short"
    elif change == "raw entries":
        del request.raw_input_contents[-1]
    elif change == "raw and contents":
        request.inputs[0].contents.fp32_contents.extend([1.0])
    elif change == "wrong datatype":
        request.inputs[2].datatype = "INT32"
        request.raw_input_contents[2] = request.raw_input_contents[2][:12]
    elif change == "unknown input":
        request.inputs[1].name = "nope"
    return request


BAD = {
    "not a multiple": "raw_input_contents[0]'s size 31 is not a multiple of the 4-byte size of a FP32 element",
    "disagrees with the shape": "shape [2, 4] needs 8 element(s) (32 bytes), but raw_input_contents[0]'s size is 36 bytes",
    "shorter than the shape": "shape [2, 4] needs 8 element(s) (32 bytes), but raw_input_contents[0]'s size is 28 bytes",
    "BYTES past its tensor": "BYTES element 0 says 99 byte(s), past the end of the tensor's data",
    "BYTES length cut short": "input 's': BYTES element 1's 4-byte length runs past the tensor's data",
    "BYTES not utf-8": "input 's': BYTES element 0 is not valid UTF-8",
    "BOOL byte not 0 or 1": "input 'b': BOOL element 1 is the byte 2, not 0 or 1",
    "typed contents disagree with the shape": "input 'x': shape [2, 4] needs 8 element(s), but 'data' has 7",
    "typed FP16 contents": "input 'h': FP16 data has no typed contents field; send it in raw_input_contents",
    "typed bytes not utf-8": "input 's': a BYTES element is not valid UTF-8",
    "raw entries": "raw_input_contents has 4 entries but the request has 5 input(s)",
    "raw and contents": "input 'x' has contents while the request has raw_input_contents",
    "wrong datatype": "input 'c' has datatype INT32 but the model takes INT64",
    "unknown input": "unknown input 'nope'",
}


def assert_invalid_argument_then_still_serving(channel: grpc.Channel, model: bytes, call: str, message: bytes,
                                              reason: str) -> None:  # fmt: skip
    """``message`` (as sent, bytes) to ``call`` is INVALID_ARGUMENT with ``reason`` in its details, and a good
    ModelInfer after it gets what onnxruntime computes with ``model``."""
    send = channel.unary_unary(f"/inference.GRPCInferenceService/{call}")
    with pytest.raises(grpc.RpcError) as refused:
        send(message)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    assert reason in refused.value.details()
    answer = GRPCInferenceServiceStub(channel).ModelInfer(raw_request(inputs()))
    assert_same(decoded(answer), local_run(model, inputs()))


@pytest.mark.parametrize("change", list(BAD))
def test_grpc_bad_request_is_invalid_argument_with_the_reason_and_the_server_stays_up(
    replica: Replica, change: str
) -> None:
    message = bad_request(inputs(), change).SerializeToString()
    assert_invalid_argument_then_still_serving(replica.channel, replica.model, "ModelInfer", message, BAD[change])


def test_grpc_message_over_the_size_limit_is_invalid_argument_naming_both_sizes(replica: Replica) -> None:
    feeds = inputs()
    feeds["x"] = np.zeros((LIMIT // 16 + 1, 4), dtype=np.float32)  # just over the limit
    with pytest.raises(grpc.RpcError) as refused:
        replica.stub.ModelInfer(raw_request(feeds))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(rf"the request message is [\d,]+ bytes, over the limit of {LIMIT:,}", refused.value.details())
    feeds["x"] = np.zeros((LIMIT // 4, 4), dtype=np.float32)  # past twice the limit: gRPC drops it unread
    with pytest.raises(grpc.RpcError) as dropped:
        replica.stub.ModelInfer(raw_request(feeds))
    assert dropped.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_same(decoded(replica.stub.ModelInfer(raw_request(inputs()))), local_run(replica.model, inputs()))


def assert_model_config_is_unimplemented_naming_model_metadata(channel: grpc.Channel) -> None:
    send = channel.unary_unary("/inference.GRPCInferenceService/ModelConfig")  # tritonclient's get_model_config
    with pytest.raises(grpc.RpcError) as refused:
        send(b"\x0a" + bytes([len(MODEL)]) + MODEL.encode())
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert refused.value.details() == (
        "ModelConfig is Triton's own call, not the Open Inference Protocol's; ModelMetadata answers the model's metadata"
    )


def test_tritons_model_config_call_is_unimplemented_naming_model_metadata(replica: Replica) -> None:
    assert_model_config_is_unimplemented_naming_model_metadata(replica.channel)


UNPARSABLE = {  # a message protobuf cannot read: how it is broken, the call, its bytes
    "id not UTF-8": ("ModelInfer", pb.ModelInferRequest(model_name=MODEL).SerializeToString() + b"\x1a\x01\xff"),
    "garbage": ("ModelInfer", b"\xff\xff\xff"),
    "raw contents cut short": (
        "ModelInfer",
        pb.ModelInferRequest(model_name=MODEL).SerializeToString() + b"\x3a\x64abc",
    ),
    "field cut short": ("ModelReady", b"\x0a\x05ab"),
}


@pytest.mark.parametrize("broken", list(UNPARSABLE))
def test_a_message_that_does_not_parse_is_invalid_argument_and_the_server_stays_up(
    replica: Replica, broken: str
) -> None:
    call, data = UNPARSABLE[broken]
    reason = f"the request is not a {call}Request message"
    assert_invalid_argument_then_still_serving(replica.channel, replica.model, call, data, reason)


def assert_client_matches_onnxruntime(client: str, address: str, version: str, model: bytes, folder: Path) -> None:
    """``client`` (triton or kserve, with its defaults) at ``address`` finds the server live and ready and
    gets for ``inputs()`` what onnxruntime computes in process with ``model``."""
    facts, got = run_client([client, address, MODEL, version], inputs(), folder)
    assert facts["live"] and facts["ready"] and facts["model_ready"] and facts["id"] == f"{client}-1"
    assert_same(got, local_run(model, inputs()))


@pytest.mark.parametrize("client", ["triton", "kserve"])
def test_third_party_grpc_clients_with_their_defaults_match_onnxruntime(
    replica: Replica, client: str, tmp_path: Path
) -> None:
    assert_client_matches_onnxruntime(client, replica.address, VERSION, replica.model, tmp_path)


def test_a_grpc_port_in_use_is_refused_before_anything_listens(tmp_path: Path) -> None:
    path, digest = write_model(client_types_model(), tmp_path / "kinds.onnx")
    with socket.socket() as taken:  # held as another gRPC server holds it: gRPC's default would share it
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(ReplicaExited) as exited,
            start_replica(MODEL, VERSION, path, digest, extra_args=["--grpc-port", str(port)]),
        ):
            pass
    assert exited.value.returncode == 2
    assert f"cannot listen for gRPC on 127.0.0.1:{port}" in str(exited.value)


def test_grpc_calls_are_counted_in_the_replicas_metrics(replica: Replica) -> None:
    def count(code: str) -> float:
        text = httpx.get(f"{replica.url}/metrics").text
        found = re.search(
            rf'modelcat_replica_requests_total{{code="{code}",[^}}]*route="grpc_model_infer"[^}}]*}} (\S+)', text
        )
        return float(found.group(1)) if found else 0.0

    before = count("200"), count("400")
    replica.stub.ModelInfer(raw_request(inputs()))
    with pytest.raises(grpc.RpcError):
        replica.stub.ModelInfer(bad_request(inputs(), "unknown input"))
    assert (count("200"), count("400")) == (before[0] + 1, before[1] + 1)


def test_grpc_answers_name_the_model_version_and_digest_served(replica: Replica) -> None:
    digest = "sha256:" + hashlib.sha256(replica.model).hexdigest()
    identity = {"x-model-name": MODEL, "x-model-version": VERSION, "x-model-digest": digest}
    _, call = replica.stub.ModelInfer.with_call(raw_request(inputs()))
    assert dict(call.trailing_metadata()) == identity
    with pytest.raises(grpc.RpcError) as refused:  # a refusal names them too: a router checks who answered
        replica.stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, model_version="9.9.9"))
    assert dict(refused.value.trailing_metadata()) == identity
