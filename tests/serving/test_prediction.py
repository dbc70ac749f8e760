"""The prediction a router records for the live metrics: the first element of the response's first output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catalog.serving.router_telemetry import prediction_of


def _response(*outputs: dict) -> bytes:
    return json.dumps({"model_name": "m", "outputs": list(outputs)}).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_response({"name": "p", "datatype": "FP32", "shape": [2, 1], "data": [0.75, 0.5]}), 0.75),
        (_response({"name": "p", "datatype": "FP32", "shape": [1, 1], "data": [[0.25]]}), 0.25),  # nested
        (_response({"name": "c", "datatype": "INT64", "shape": [1], "data": [3]}, {"name": "x", "data": [9]}), 3.0),
        (_response({"name": "b", "datatype": "BOOL", "shape": [1], "data": [True]}), 1.0),
        (_response({"name": "s", "datatype": "BYTES", "shape": [1], "data": ["fraud"]}), None),
        (_response(), None),
        (_response({"name": "p", "datatype": "FP32", "shape": [0], "data": []}), None),
        (b'{"error": "model not ready"}', None),
        (b"not json", None),
        (b"[1, 2]", None),
    ],
    ids=["score", "nested", "class", "bool", "string", "no-output", "empty", "error", "not-json", "not-an-object"],
)
def test_the_prediction_is_the_first_element_of_the_first_output(body: bytes, expected: float | None) -> None:
    assert prediction_of(body) == expected


def _binary_response(datatype: str, data: bytes) -> tuple[bytes, str]:
    header = {"name": "p", "datatype": datatype, "shape": [2], "parameters": {"binary_data_size": len(data)}}
    text = json.dumps({"model_name": "m", "outputs": [header]}).encode()
    return text + data, str(len(text))


@pytest.mark.parametrize(
    ("datatype", "data", "expected"),
    [
        ("FP32", np.array([0.75, 0.5], "<f4").tobytes(), 0.75),
        ("FP16", np.array([0.25, 1], "<f2").tobytes(), 0.25),
        ("INT64", np.array([3, 9], "<i8").tobytes(), 3.0),
        ("BOOL", b"\x01\x00", 1.0),
        ("BYTES", b"\x01\x00\x00\x00a", None),
        ("FP32", b"\x00\x00", None),  # shorter than one element
    ],
    ids=["score", "fp16", "class", "bool", "string", "cut-short"],
)
def test_the_prediction_is_read_from_a_binary_first_output(datatype: str, data: bytes, expected: float | None) -> None:
    body, json_length = _binary_response(datatype, data)
    assert prediction_of(body, json_length) == expected
