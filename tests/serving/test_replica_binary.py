"""The binary tensor data extension: the codec in process, and each server answering it over HTTP (a
replica, ``modelcat serve``, the router forwarding to a replica): every bad request a 400 with its
reason, after which the server still answers a good one."""

from __future__ import annotations

import gzip
import json
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from catalog.serving.oip import InvalidRequest, TensorMeta, parse_request
from catalog.serving.oip_answer import encode_body
from catalog.serving.replica import _read_body
from tests.serving.oip_servers import SERVERS, Served, oip_servers
from tests.serving.replica_fixtures import (
    CLIENT_DATATYPES,
    CLIENT_FEEDS,
    client_types_model,
    run_in_process,
)

HEADER = "Inference-Header-Content-Length"
X = TensorMeta("x", "FP32", ("batch", 4))
S = TensorMeta("s", "BYTES", ("k",))
B = TensorMeta("b", "BOOL", ("j",))
OUT = TensorMeta("x_out", "FP32", ("batch", 4))


def strings(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def binary_request(header: dict[str, Any], *data: bytes) -> tuple[bytes, str]:
    text = json.dumps(header).encode()
    return text + b"".join(data), str(len(text))


def entry(name: str, datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": size}}


# -- the codec, in process ----------------------------------------------------------------------------


def test_binary_inputs_decode_as_views_of_the_body() -> None:
    x = np.arange(8, dtype="<f4").reshape(2, 4)
    header = {"inputs": [entry("x", "FP32", [2, 4], 32), entry("s", "BYTES", [2], 15), entry("b", "BOOL", [3], 3)]}
    body, length = binary_request(header, x.tobytes(), strings(b"caf\xc3\xa9", b"ab"), b"\x01\x00\x01")
    parsed = parse_request(body, [X, S, B], [OUT], length)
    assert np.array_equal(parsed.inputs["x"], x) and parsed.inputs["x"].dtype == np.float32
    assert not parsed.inputs["x"].flags.owndata  # a view of the body, not a copy
    assert parsed.inputs["s"].tolist() == ["café", "ab"]
    assert parsed.inputs["b"].tolist() == [True, False, True]
    assert parsed.binary_outputs == frozenset()


def test_binary_and_json_inputs_mix_in_one_request() -> None:
    header = {
        "inputs": [{"name": "s", "datatype": "BYTES", "shape": [1], "data": ["q"]}, entry("x", "FP32", [1, 4], 16)]
    }
    body, length = binary_request(header, np.ones(4, "<f4").tobytes())
    parsed = parse_request(body, [X, S], [OUT], length)
    assert parsed.inputs["s"].tolist() == ["q"] and parsed.inputs["x"].tolist() == [[1.0] * 4]


@pytest.mark.parametrize(
    "parameters,outputs,binary",
    [
        ({"binary_data_output": True}, None, {"x_out", "z"}),
        ({"binary_data_output": True}, [{"name": "x_out", "parameters": {"binary_data": False}}, {"name": "z"}], {"z"}),
        ({}, [{"name": "x_out", "parameters": {"binary_data": True}}], {"x_out"}),
        ({}, None, set()),
    ],
    ids=["request-wide", "per-output-overrides", "per-output", "json"],
)
def test_binary_outputs_are_the_ones_asked_for(parameters: dict[str, Any], outputs: Any, binary: set[str]) -> None:
    request: dict[str, Any] = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]}
    request |= {"parameters": parameters} | ({"outputs": outputs} if outputs else {})
    parsed = parse_request(json.dumps(request).encode(), [X], [OUT, TensorMeta("z", "BYTES", ("n",))])
    assert parsed.binary_outputs == binary


def test_binary_outputs_follow_the_json_header_in_order() -> None:
    y = np.array([[0.5, -1.0]], dtype=np.float32)
    z = np.array(["é", ""], dtype=object)
    body, length = encode_body("m", "1", {"y": y, "z": z, "w": np.array([3], np.int64)}, "r", {"y", "z"})
    assert length is not None
    header = json.loads(body[:length])
    assert header["id"] == "r" and [o["name"] for o in header["outputs"]] == ["y", "z", "w"]
    assert header["outputs"][0] == {
        "name": "y",
        "datatype": "FP32",
        "shape": [1, 2],
        "parameters": {"binary_data_size": 8},
    }
    assert header["outputs"][2]["data"] == [3]  # not asked as binary: JSON
    assert body[length:] == y.astype("<f4").tobytes() + strings("é".encode(), b"")


def test_all_json_outputs_have_no_header_length() -> None:
    body, length = encode_body("m", "1", {"y": np.zeros((1, 2), np.float32)})
    assert length is None and json.loads(body)["outputs"][0]["data"] == [0.0, 0.0]


def _fp32(size: int, shape: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    return {"inputs": [entry("x", "FP32", shape or [1, 4], size) | extra]}


BAD_BINARY = {
    # name: (JSON header, binary data, header length override, fragments of the message)
    "size past the body": (_fp32(16), b"\0" * 12, None, ["'x'", "binary_data_size 16 runs past the end", "12 byte"]),
    "size not a multiple of the element": (_fp32(15), b"\0" * 15, None, ["'x'", "not a multiple", "4-byte", "FP32"]),
    "size disagrees with the shape": (_fp32(32), b"\0" * 32, None, ["'x'", "needs 4 element(s) (16 bytes)", "32"]),
    "header length past the end": (_fp32(16), b"\0" * 16, "100000", ["Inference-Header-Content-Length", "past the end"]),
    "header length not a number": (_fp32(16), b"\0" * 16, "ten", ["Inference-Header-Content-Length", "'ten'"]),
    "header length not ascii digits": (  # '²' is a digit to str.isdigit, not to int()
        _fp32(16), b"\0" * 16, "\u00b2", ["Inference-Header-Content-Length", "'\u00b2' is not a byte count"],
    ),
    "bytes prefix past its tensor": (
        {"inputs": [entry("s", "BYTES", [2], 10)]}, strings(b"ab") + struct.pack("<I", 9) + b"x", None,
        ["'s'", "BYTES element 1 says 9 byte(s)", "past the end of the tensor's data"],
    ),
    "bytes length cut short": (
        {"inputs": [entry("s", "BYTES", [2], 8)]}, strings(b"ab") + b"\0\0", None, ["'s'", "element 1's 4-byte length"],
    ),
    "bytes fewer elements than the shape": (
        {"inputs": [entry("s", "BYTES", [3], 6)]}, strings(b"ab"), None, ["'s'", "needs 3 BYTES element(s)", "has 1"],
    ),
    "bytes not utf-8": ({"inputs": [entry("s", "BYTES", [1], 5)]}, strings(b"\xff"), None, ["'s'", "not valid UTF-8"]),
    "bool byte not 0 or 1": ({"inputs": [entry("b", "BOOL", [2], 2)]}, b"\x01\x02", None, ["'b'", "element 1", "byte 2"]),
    "json and binary for one input": (_fp32(16, data=[0.0] * 4), b"\0" * 16, None, ["'x'", "both 'data' and binary"]),
    "size not a count": (_fp32(-4), b"", None, ["'x'", "'binary_data_size' must be a byte count"]),
    "bytes no input claims": (_fp32(16), b"\0" * 20, None, ["4 byte(s) of binary data after"]),
    "binary without the header": (_fp32(16), b"\0" * 16, "absent", ["Inference-Header-Content-Length"]),
    "binary_data not a boolean": (
        _fp32(16) | {"outputs": [{"name": "x_out", "parameters": {"binary_data": "yes"}}]}, b"\0" * 16, None,
        ["output 'x_out'", "'binary_data' must be true or false"],
    ),
}  # fmt: skip


def bad_body(header: dict[str, Any], data: bytes, length: str | None) -> tuple[bytes, dict[str, str]]:
    body, own = binary_request(header, data)
    if length == "absent":
        return body, {}
    return body, {HEADER: length or own}


@pytest.mark.parametrize("header,data,length,expected", BAD_BINARY.values(), ids=BAD_BINARY.keys())
def test_bad_binary_request_is_refused_naming_what_is_wrong(
    header: dict[str, Any], data: bytes, length: str | None, expected: list[str]
) -> None:
    body, headers = bad_body(header, data, length)
    with pytest.raises(InvalidRequest) as caught:
        given = [meta for meta in (X, S, B) if meta.name in {tensor["name"] for tensor in header["inputs"]}]
        parse_request(body, given, [OUT], headers.get(HEADER))
    for fragment in expected:
        assert fragment in str(caught.value)


# -- each server over HTTP: a replica, modelcat serve, the router -------------------------------------

MODEL, VERSION = "client-types", "0.1.0"
INFER = f"/v2/models/{MODEL}/infer"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], Served]]:
    with oip_servers({MODEL: client_types_model()}, tmp_path_factory.mktemp("client-types"), VERSION) as served:
        yield served


@pytest.fixture(params=SERVERS)
def server(
    request: pytest.FixtureRequest, servers: dict[tuple[str, str], Served]
) -> Iterator[tuple[httpx.Client, Path]]:
    """A client of each server in turn, and the model's file."""
    served = servers[(request.param, MODEL)]
    with httpx.Client(base_url=served.url, timeout=30.0, trust_env=False) as client:
        yield client, served.artifact


FEEDS = CLIENT_FEEDS


def raw(array: np.ndarray) -> bytes:
    if array.dtype == object:
        return strings(*(str(item).encode() for item in array.reshape(-1)))
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def assert_answers_binary_requests_with_binary_outputs(client: httpx.Client, model: Path) -> None:
    inputs = [entry(name, CLIENT_DATATYPES[name], list(a.shape), len(raw(a))) for name, a in FEEDS.items()]
    body, length = binary_request({"inputs": inputs, "parameters": {"binary_data_output": True}},
                                  *(raw(a) for a in FEEDS.values()))  # fmt: skip
    response = client.post(INFER, content=body, headers={HEADER: length, "content-type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    json_length = int(response.headers[HEADER])
    header = json.loads(response.content[:json_length])
    expected = run_in_process(model, FEEDS)
    offset = json_length
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        assert "data" not in output
        assert response.content[offset : offset + size] == raw(expected[output["name"]]), output["name"]
        offset += size
    assert offset == len(response.content)


@pytest.mark.slow
def test_binary_requests_get_binary_outputs(server: tuple[httpx.Client, Path]) -> None:
    assert_answers_binary_requests_with_binary_outputs(*server)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_BINARY))
def test_each_bad_binary_request_is_a_400_with_its_reason_and_the_server_still_answers(
    server: tuple[httpx.Client, Path], case: str
) -> None:
    client, model = server
    header, data, length, expected = BAD_BINARY[case]
    given = {tensor["name"] for tensor in header["inputs"]}
    others = [json_tensor(name) for name in FEEDS if name not in given]  # the model needs every input
    body, headers = bad_body(header | {"inputs": header["inputs"] + others}, data, length)
    response = client.post(INFER, content=body, headers={k: v.encode("latin-1") for k, v in headers.items()})
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert all(fragment in message for fragment in expected), message
    assert_answers_binary_requests_with_binary_outputs(client, model)


def json_tensor(name: str) -> dict[str, Any]:
    array = FEEDS[name]
    data = [float(v) for v in array.reshape(-1)] if array.dtype == np.float16 else array.reshape(-1).tolist()
    return {"name": name, "datatype": CLIENT_DATATYPES[name], "shape": list(array.shape), "data": data}


@pytest.mark.slow
@pytest.mark.parametrize(
    "encoding,body,status,expected",
    [
        ("br", b"{}", 415, "Content-Encoding 'br' is not supported"),
        ("gzip", b"not gzip at all", 400, "not valid gzip data"),
        ("gzip", gzip.compress(b'{"inputs": []}')[:-12], 400, "cut short"),
        ("deflate", zlib.compress(bytes(65 << 20)), 413, "inflates to over the limit"),
    ],
    ids=["unknown", "corrupt", "truncated", "bomb"],
)
def test_a_bad_content_encoding_is_refused_and_the_server_still_answers(
    server: tuple[httpx.Client, Path], encoding: str, body: bytes, status: int, expected: str
) -> None:
    client, model = server
    response = client.post(INFER, content=body, headers={"content-encoding": encoding})
    assert response.status_code == status, response.text
    assert expected in response.json()["error"]
    assert_answers_binary_requests_with_binary_outputs(client, model)


@pytest.mark.slow
def test_the_server_says_it_speaks_the_binary_extension(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]


@pytest.mark.slow
@pytest.mark.parametrize("server", ["replica", "serve"], indirect=True)  # the router's: test_router_binary.py
@pytest.mark.parametrize("path", [f"/v2/models/{MODEL}/config", f"/v2/models/{MODEL}/versions/{VERSION}/config"])
def test_model_config_is_a_404_naming_the_metadata_endpoint(server: tuple[httpx.Client, Path], path: str) -> None:
    client, _ = server
    response = client.get(path)
    assert response.status_code == 404
    message = response.json()["error"]
    assert "Triton's own endpoint" in message and f"GET /v2/models/{MODEL}/versions/{VERSION}" in message


class _StreamedRequest:
    """What ``_read_body`` reads of a request: its headers and its body in fresh 64 KiB chunks."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.headers = {"content-length": str(size)}

    async def stream(self) -> AsyncIterator[bytes]:
        for _ in range(self.size // CHUNK):
            yield bytes(CHUNK)


CHUNK = 64 * 1024


def test_reading_a_body_costs_its_size_once() -> None:
    size = 16 * 1024 * 1024
    tracemalloc.start()
    try:
        # the fake stream never waits, so the coroutine runs to its end in one step (no event loop,
        # whose own start-up would be traced too)
        reading = _read_body(_StreamedRequest(size), 64 * 1024 * 1024)  # type: ignore[arg-type]
        with pytest.raises(StopIteration) as finished:
            reading.send(None)
        body = finished.value.value
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(body) == size
    assert peak < 1.25 * size, f"reading {size:,} bytes peaked at {peak:,}"
