"""``modelcat smoke --protocol grpc`` sends the request ``example_request`` builds as raw contents."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.deploy.grpc_traffic import infer_message
from catalog.errors import InvalidRequest
from catalog.serving.oip import decode_binary_tensor


def test_a_json_request_becomes_a_model_infer_message_with_raw_contents_a_replica_decodes() -> None:
    body = {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[0.5, 1.5], [2.5, -1.0]]},
            {"name": "ids", "datatype": "INT64", "shape": [3], "data": [1, 2, 3]},
            {"name": "text", "datatype": "BYTES", "shape": [2], "data": ["héllo", ""]},
        ]
    }
    message = infer_message("m", body)
    assert message.model_name == "m" and not message.model_version
    assert [(t.name, t.datatype, list(t.shape)) for t in message.inputs] == [
        ("x", "FP32", [2, 2]),
        ("ids", "INT64", [3]),
        ("text", "BYTES", [2]),
    ]
    decoded = [
        decode_binary_tensor(t.name, t.datatype, list(t.shape), memoryview(raw))
        for t, raw in zip(message.inputs, message.raw_input_contents, strict=True)
    ]
    np.testing.assert_array_equal(decoded[0], np.array([[0.5, 1.5], [2.5, -1.0]], dtype=np.float32))
    np.testing.assert_array_equal(decoded[1], np.array([1, 2, 3], dtype=np.int64))
    assert decoded[2].tolist() == ["héllo", ""]


def test_a_request_whose_data_does_not_fit_its_shape_is_refused_before_it_is_sent() -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1.0, 2.0]}]}
    with pytest.raises(InvalidRequest, match="x"):
        infer_message("m", body)
