"""The replica over plain HTTP (httpx): validation answers, 404s, identity headers, datatypes, metrics."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from tests.serving.replica_fixtures import (
    FRAUD,
    RunningReplica,
    fraud_replica,  # noqa: F401  (a fixture)
    start_replica,
    types_model,
    write_model,
)

pytestmark = pytest.mark.slow

INFER = f"/v2/models/{FRAUD.model}/versions/{FRAUD.version}/infer"


@pytest.fixture(scope="module")
def client(fraud_replica: RunningReplica) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=fraud_replica.url, timeout=10.0) as c:
        yield c


@pytest.fixture(scope="module")
def types_replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path, digest = write_model(types_model(), tmp_path_factory.mktemp("types") / "types.onnx")
    with start_replica("types", "0.1.0", path, digest) as (url, _), httpx.Client(base_url=url, timeout=10.0) as c:
        yield c


def features(batch: int = 2, *, nested: bool = False, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    x = np.random.default_rng(seed).standard_normal((batch, 16)).astype(np.float32)
    data = x.tolist() if nested else x.reshape(-1).tolist()
    return x, {"name": "features", "shape": [batch, 16], "datatype": "FP32", "data": data}


def local_run(x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(FRAUD.artifact.read_bytes(), providers=["CPUExecutionProvider"])
    return session.run(["fraud_probability"], {"features": x})[0]


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    return body["error"]


# --- inference --------------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_infer_matches_onnxruntime_in_process(client: httpx.Client, nested: bool) -> None:
    x, tensor = features(3, nested=nested)
    response = client.post(INFER, json={"id": "req-7", "inputs": [tensor], "parameters": {"trace": True}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == FRAUD.model and body["model_version"] == FRAUD.version and body["id"] == "req-7"
    [out] = body["outputs"]
    assert out["name"] == "fraud_probability" and out["datatype"] == "FP32" and out["shape"] == [3, 1]
    got = np.array(out["data"], dtype=np.float32).reshape(out["shape"])
    assert np.allclose(got, local_run(x), rtol=1e-6, atol=1e-7)


def test_infer_without_version_in_path_and_with_output_selection(client: httpx.Client) -> None:
    _, tensor = features(1)
    body = {"inputs": [tensor], "outputs": [{"name": "fraud_probability"}]}
    response = client.post(f"/v2/models/{FRAUD.model}/infer", json=body)
    assert response.status_code == 200, response.text
    assert "id" not in response.json()
    assert [o["name"] for o in response.json()["outputs"]] == ["fraud_probability"]


def test_batch_of_zero_rows_is_served(client: httpx.Client) -> None:
    response = client.post(
        INFER, json={"inputs": [{"name": "features", "shape": [0, 16], "datatype": "FP32", "data": []}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["shape"] == [0, 1]


# --- every 400 --------------------------------------------------------------------------------


def _with(**changes: Any) -> dict[str, Any]:
    _, tensor = features(2)
    tensor.update(changes)
    return {"inputs": [tensor]}


BAD_REQUESTS = {
    "wrong input name": (_with(name="feature"), ["unknown input 'feature'", "'features'"]),
    "wrong datatype": (_with(datatype="FP64"), ["'features'", "FP64", "takes FP32"]),
    "unknown datatype": (_with(datatype="FLOAT"), ["'features'", "unknown datatype 'FLOAT'"]),
    "data shorter than shape": (_with(data=[0.5] * 31), ["'features'", "needs 32", "has 31"]),
    "data longer than shape": (_with(shape=[1, 16]), ["'features'", "needs 16", "has 32"]),
    "wrong fixed dim": (_with(shape=[4, 8]), ["'features'", "dimension 1 is 8", "fixes it at 16"]),
    "wrong rank": (_with(shape=[32]), ["'features'", "1 dimension(s)", "takes 2"]),
    "negative dim": (_with(shape=[-2, 16]), ["'features'", "negative"]),
    "string in FP32 data": (_with(data=["1.0"] + [0.0] * 31), ["'features'", "FP32 data must be numbers", "element 0"]),
    "boolean in FP32 data": (_with(data=[0.0, True] + [0.0] * 30), ["'features'", "element 1 is a boolean"]),
    "nested deeper than shape": (_with(data=[[[0.0] * 16]] * 2), ["'features'", "nested deeper"]),
    "data not an array": (_with(data=3.0), ["'features'", "must be an array"]),
    "shape not integers": (_with(shape=[2.0, 16]), ["'features'", "array of integers"]),
    "missing datatype": ({"inputs": [{"name": "features", "shape": [1, 16], "data": [0] * 16}]}, ["no 'datatype'"]),
    "input twice": ({"inputs": [features(1)[1], features(1)[1]]}, ["'features'", "twice"]),
    "missing input": ({"inputs": []}, ["missing input", "'features'"]),
    "no inputs": ({"id": "x"}, ["'inputs'"]),
    "unknown output": (
        {"inputs": [features(1)[1]], "outputs": [{"name": "logits"}]},
        ["unknown output 'logits'", "'fraud_probability'"],
    ),
    "id not a string": ({"id": 7, "inputs": [features(1)[1]]}, ["'id' must be a string"]),
    "not an object": ([1, 2], ["must be a JSON object"]),
    "data and binary_data_size both": (
        {"inputs": [{**features(1)[1], "parameters": {"binary_data_size": 64}}]},
        ["'features'", "both 'data' and binary_data_size"],
    ),
    "float out of FP32 range": (_with(data=[1e300] + [0.0] * 31), ["'features'", "range of FP32"]),
}


@pytest.mark.parametrize("payload,expected", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_request_is_a_400_naming_what_is_wrong(client: httpx.Client, payload: Any, expected: list[str]) -> None:
    message = error_of(client.post(INFER, json=payload), 400)
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize(
    "body,expected",
    [
        (b'{"inputs": [', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'{"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [NaN]}]}', "NaN"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
    ],
    ids=["truncated", "empty", "not utf-8", "bare NaN", "deep nesting"],
)
def test_malformed_json_is_a_400(client: httpx.Client, body: bytes, expected: str) -> None:
    response = client.post(INFER, content=body, headers={"content-type": "application/json"})
    assert expected in error_of(response, 400)


def test_request_over_the_size_limit_is_a_413(tmp_path_factory: pytest.TempPathFactory) -> None:
    with start_replica(FRAUD.model, FRAUD.version, FRAUD.artifact, FRAUD.digest,
                       extra_args=["--max-request-bytes", "1000"]) as (url, _):  # fmt: skip
        _, tensor = features(8)
        response = httpx.post(url + INFER, json={"inputs": [tensor]})
        assert "over the limit of 1,000" in error_of(response, 413)
        assert httpx.post(url + INFER, json={"inputs": [features(1)[1]]}).status_code == 200


# --- 404s and headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path,expected",
    [
        ("GET", "/v2/models/recommender", "'recommender' is not served here"),
        ("GET", f"/v2/models/{FRAUD.model}/versions/1.4.0", "version '1.4.0' is not served here"),
        ("GET", f"/v2/models/{FRAUD.model}/versions/1.4.0/ready", "version '1.4.0' is not served here"),
        ("GET", "/v2/models/recommender/ready", "'recommender' is not served here"),
        ("POST", f"/v2/models/{FRAUD.model}/versions/1.2.0/infer", "version '1.2.0' is not served here"),
        ("POST", "/v2/models/churn-predictor/infer", "'churn-predictor' is not served here"),
        ("GET", "/v2/repository/index", "no such endpoint"),
        ("GET", "/", "no such endpoint"),
    ],
)
def test_other_models_and_paths_are_404(client: httpx.Client, method: str, path: str, expected: str) -> None:
    _, tensor = features(1)
    response = client.request(method, path, json={"inputs": [tensor]} if method == "POST" else None)
    assert expected in error_of(response, 404)


def test_wrong_method_is_405_with_an_error_body(client: httpx.Client) -> None:
    assert "GET is not allowed" in error_of(client.get(INFER), 405)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v2"),
        ("GET", "/v2/health/live"),
        ("GET", "/v2/health/ready"),
        ("GET", f"/v2/models/{FRAUD.model}"),
        ("GET", f"/v2/models/{FRAUD.model}/versions/{FRAUD.version}/ready"),
        ("POST", INFER),
        ("POST", "/v2/models/other/infer"),
        ("GET", "/nowhere"),
        ("GET", "/metrics"),
    ],
)
def test_every_response_names_model_version_and_digest(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path, json={"inputs": [features(1)[1]]} if method == "POST" else None)
    assert response.headers["x-model-name"] == FRAUD.model
    assert response.headers["x-model-version"] == FRAUD.version
    assert response.headers["x-model-digest"] == FRAUD.digest


def test_metadata_health_and_server(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get(f"/v2/models/{FRAUD.model}/ready").json()["ready"] is True
    server = client.get("/v2").json()
    assert server["name"] == "modelcat-replica" and isinstance(server["extensions"], list)
    for path in (f"/v2/models/{FRAUD.model}", f"/v2/models/{FRAUD.model}/versions/{FRAUD.version}"):
        meta = client.get(path).json()
        assert meta == {
            "name": FRAUD.model,
            "versions": [FRAUD.version],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 16]}],
            "outputs": [{"name": "fraud_probability", "datatype": "FP32", "shape": [-1, 1]}],
            "parameters": {"model_name": FRAUD.model, "model_version": FRAUD.version, "model_digest": FRAUD.digest},
        }


# --- metrics -----------------------------------------------------------------------------------


def _sample(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_metrics_count_requests_errors_and_latency_per_model_version(client: httpx.Client) -> None:
    base = {"model": FRAUD.model, "version": FRAUD.version, "route": "infer"}
    before = client.get("/metrics").text
    for _ in range(3):
        assert client.post(INFER, json={"inputs": [features(1)[1]]}).status_code == 200
    assert client.post(INFER, json={"inputs": []}).status_code == 400
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")

    def delta(name: str, **labels: str) -> float:
        return _sample(after.text, name, **labels) - _sample(before, name, **labels)

    assert delta("modelcat_replica_requests_total", **base, code="200") == 3
    assert delta("modelcat_replica_requests_total", **base, code="400") == 1
    assert delta("modelcat_replica_request_errors_total", **base, code="400") == 1
    assert delta("modelcat_replica_request_errors_total", **base, code="200") == 0
    assert delta("modelcat_replica_request_duration_seconds_count", **base) == 4
    assert _sample(after.text, "modelcat_replica_info", digest=FRAUD.digest, model=FRAUD.model) == 1
    assert _sample(after.text, "modelcat_replica_inferences_in_flight", model=FRAUD.model) == 0


# --- BOOL, BYTES, INT64, INT32, FP64 ---------------------------------------------------------


def types_request(**overrides: dict[str, Any]) -> dict[str, Any]:
    tensors = {
        "flags": {"name": "flags", "shape": [3], "datatype": "BOOL", "data": [True, False, True]},
        "words": {"name": "words", "shape": [2], "datatype": "BYTES", "data": ["café", ""]},
        "counts": {"name": "counts", "shape": [2, 2], "datatype": "INT64", "data": [[1, -2], [2**40, 0]]},
        "small": {"name": "small", "shape": [3], "datatype": "INT32", "data": [1, 2, -3]},
        "wide": {"name": "wide", "shape": [2], "datatype": "FP64", "data": [0.1, "-Infinity"]},
    }
    for name, change in overrides.items():
        tensors[name] = {**tensors[name], **change}
    return {"inputs": list(tensors.values())}


def test_bool_bytes_int_and_fp64_round_trip(types_replica: httpx.Client) -> None:
    response = types_replica.post("/v2/models/types/versions/0.1.0/infer", json=types_request())
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["not_flags"] == {"name": "not_flags", "datatype": "BOOL", "shape": [3], "data": [False, True, False]}
    assert outputs["words_out"] == {"name": "words_out", "datatype": "BYTES", "shape": [2], "data": ["café", ""]}
    assert outputs["doubled"] == {"name": "doubled", "datatype": "INT64", "shape": [2, 2], "data": [2, -4, 2**41, 0]}
    assert outputs["small_out"]["datatype"] == "INT32" and outputs["small_out"]["data"] == [1, 2, -3]
    assert outputs["wide_out"]["datatype"] == "FP64" and outputs["wide_out"]["data"] == [0.1, "-Infinity"]


def test_types_metadata_uses_oip_datatypes(types_replica: httpx.Client) -> None:
    meta = types_replica.get("/v2/models/types").json()
    assert {t["name"]: (t["datatype"], t["shape"]) for t in meta["inputs"]} == {
        "flags": ("BOOL", [-1]),
        "words": ("BYTES", [-1]),
        "counts": ("INT64", [-1, 2]),
        "small": ("INT32", [3]),
        "wide": ("FP64", [-1]),
    }


TYPE_ERRORS = {
    "number as BOOL": ({"flags": {"data": [1, 0, 1]}}, ["'flags'", "BOOL data must be true or false", "element 0"]),
    "number as BYTES": ({"words": {"data": ["a", 5]}}, ["'words'", "BYTES data must be strings", "element 1"]),
    "float as INT64": ({"counts": {"data": [1, 2, 3.5, 4]}}, ["'counts'", "INT64 data must be integers", "element 2"]),
    "INT64 overflow": ({"counts": {"data": [2**63, 0, 0, 0]}}, ["'counts'", "out of the range of INT64"]),
    "INT32 overflow": ({"small": {"data": [2**31, 0, 0]}}, ["'small'", "out of the range of INT32"]),
    "INT32 fixed dim": ({"small": {"shape": [4], "data": [1, 2, 3, 4]}}, ["'small'", "fixes it at 3"]),
    "BOOL as INT64": ({"counts": {"datatype": "BOOL"}}, ["'counts'", "has datatype BOOL", "takes INT64"]),
}


@pytest.mark.parametrize("overrides,expected", TYPE_ERRORS.values(), ids=TYPE_ERRORS.keys())
def test_datatype_errors_are_400s(types_replica: httpx.Client, overrides: Any, expected: list[str]) -> None:
    response = types_replica.post("/v2/models/types/infer", json=types_request(**overrides))
    message = error_of(response, 400)
    for fragment in expected:
        assert fragment in message


def test_types_model_input_must_all_be_given(types_replica: httpx.Client) -> None:
    payload = types_request()
    payload["inputs"] = payload["inputs"][:2]
    message = error_of(types_replica.post("/v2/models/types/infer", json=payload), 400)
    assert "missing input(s) 'counts', 'small', 'wide'" in message


def test_response_is_strict_json(types_replica: httpx.Client) -> None:
    response = types_replica.post("/v2/models/types/infer", json=types_request(wide={"data": ["NaN", "Infinity"]}))
    assert response.status_code == 200
    json.loads(response.text, parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))
    wide = next(o for o in response.json()["outputs"] if o["name"] == "wide_out")
    assert wide["data"] == ["NaN", "Infinity"]


def test_small_requests_do_not_wait_for_delayed_acks(client: httpx.Client) -> None:
    """A regression guard: without TCP_NODELAY on accepted sockets every small exchange took ~40 ms
    (Nagle's algorithm meeting delayed ACKs); with it, well under a few ms on loopback."""
    timings = []
    for _ in range(21):
        started = time.perf_counter()
        assert client.post(INFER, json={"inputs": [features(1)[1]]}).status_code == 200
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.02, f"median {statistics.median(timings) * 1000:.1f} ms"


# --- item 13: what JSON can say that a tensor cannot -------------------------------------------


def test_lone_surrogate_in_bytes_data_is_a_400(types_replica: httpx.Client) -> None:
    payload = types_request(words={"data": ["ok", "\ud800"]})
    body = json.dumps(payload).encode()  # ASCII JSON: the surrogate travels as the escape \ud800
    assert b'"\\ud800"' in body
    response = types_replica.post("/v2/models/types/infer", content=body, headers={"content-type": "application/json"})
    message = error_of(response, 400)
    assert "'words'" in message and "element 1" in message and "lone surrogate" in message
    assert "Error" not in message  # no Python exception text


def test_lone_surrogate_in_the_request_id_is_a_400(client: httpx.Client) -> None:
    body = json.dumps({"id": "req-\udc80", "inputs": [features(1)[1]]}).encode()
    response = client.post(INFER, content=body, headers={"content-type": "application/json"})
    assert "'id'" in error_of(response, 400) and "lone surrogate" in error_of(response, 400)


def test_ragged_nested_data_with_the_right_count_is_a_400(client: httpx.Client) -> None:
    rows = [[0.5] * 15, [0.5] * 17]  # 32 elements, as shape [2, 16] needs, but not 2 rows of 16
    message = error_of(client.post(INFER, json=_with(data=rows)), 400)
    assert "'features'" in message and "data[0] has 15 element(s)" in message and "[2, 16]" in message


def test_json_number_beyond_fp64_is_a_400(client: httpx.Client) -> None:
    tensor = {"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.0] * 16}
    body = json.dumps({"inputs": [tensor]}).replace('"data": [0.0', '"data": [1e400', 1).encode()
    assert json.loads(body)["inputs"][0]["data"][0] == float("inf")  # what Python's JSON makes of it
    response = client.post(INFER, content=body, headers={"content-type": "application/json"})
    message = error_of(response, 400)
    assert "'features'" in message and "element 0" in message and '"Infinity"' in message
