"""OIP tensor encoding and decoding, in process: round trips and the checks against a model's tensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from catalog.serving.oip import (
    DATATYPES,
    InvalidRequest,
    TensorMeta,
    datatype_of,
    decode_tensor,
    parse_request,
)
from catalog.serving.oip_answer import encode_response, encode_tensor

NUMERIC = [name for name in DATATYPES if name not in ("BYTES",)]
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    datatype = draw(st.sampled_from([*NUMERIC, "BYTES"]))
    shape = draw(shapes)
    if datatype == "BYTES":
        values = draw(st.lists(st.text(max_size=5), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    dtype = DATATYPES[datatype]
    elements = st.floats(width=dtype.itemsize * 8) if dtype.kind == "f" else None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@given(arrays())
@settings(max_examples=200, deadline=None)
def test_encode_then_decode_is_the_identity(array: np.ndarray) -> None:
    encoded = json.loads(json.dumps(encode_tensor("t", array), allow_nan=False))  # strict JSON on the wire
    decoded = decode_tensor("t", encoded["datatype"], encoded["shape"], encoded["data"])
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    if array.dtype.kind == "f":
        assert np.array_equal(decoded, array, equal_nan=True)
    else:
        assert np.array_equal(decoded, array)


@given(st.sampled_from(NUMERIC), shapes)
def test_nested_and_flat_data_decode_alike(datatype: str, shape: tuple[int, ...]) -> None:
    array = np.zeros(shape, dtype=DATATYPES[datatype])
    nested = array.tolist() if shape else [array.item()]
    flat = array.reshape(-1).tolist()
    assert np.array_equal(
        decode_tensor("t", datatype, list(shape), nested), decode_tensor("t", datatype, list(shape), flat)
    )


@given(st.lists(st.integers(0, 5), min_size=1, max_size=3), st.integers(0, 40))
def test_data_length_must_match_shape(shape: list[int], length: int) -> None:
    expected = int(np.prod(shape))
    data = [0.5] * length
    if length == expected:
        assert decode_tensor("t", "FP32", shape, data).shape == tuple(shape)
    else:
        with pytest.raises(InvalidRequest, match=f"needs {expected} element"):
            decode_tensor("t", "FP32", shape, data)


def test_huge_declared_shape_is_refused_without_allocating() -> None:
    with pytest.raises(InvalidRequest, match="needs 1000000000000000000000000 element"):
        decode_tensor("t", "FP32", [10**12, 10**12], [1.0])


def test_datatype_of_numpy() -> None:
    assert datatype_of(np.dtype(np.float32)) == "FP32"
    assert datatype_of(np.dtype("U3")) == "BYTES"
    assert datatype_of(np.dtype(np.bool_)) == "BOOL"


MODEL_INPUTS = (TensorMeta("a", "FP32", ("batch", 3)), TensorMeta("b", "INT64", ("batch",)))
MODEL_OUTPUTS = (TensorMeta("y", "FP32", ("batch", 1)), TensorMeta("z", "FP32", ("batch",)))


def body(**overrides: object) -> bytes:
    payload: dict[str, object] = {
        "inputs": [
            {"name": "a", "shape": [2, 3], "datatype": "FP32", "data": [0.0] * 6},
            {"name": "b", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        ]
    }
    payload.update(overrides)
    return json.dumps(payload).encode()


def test_parse_request_orders_inputs_and_defaults_outputs() -> None:
    parsed = parse_request(body(id="r1", parameters={"k": 1}), MODEL_INPUTS, MODEL_OUTPUTS)
    assert list(parsed.inputs) == ["a", "b"] and parsed.outputs == ("y", "z")
    assert parsed.id == "r1" and parsed.parameters == {"k": 1}
    assert parse_request(body(outputs=[{"name": "z"}]), MODEL_INPUTS, MODEL_OUTPUTS).outputs == ("z",)


def test_a_symbolic_dimension_must_agree_across_inputs() -> None:
    payload = json.loads(body())
    payload["inputs"][1] = {"name": "b", "shape": [3], "datatype": "INT64", "data": [1, 2, 3]}
    with pytest.raises(InvalidRequest, match="input 'b': dimension 0 \\('batch'\\) is 3 but input 'a' has batch=2"):
        parse_request(json.dumps(payload).encode(), MODEL_INPUTS, MODEL_OUTPUTS)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"outputs": [{"name": "y"}, {"name": "y"}]}, "output 'y' is requested twice"),
        ({"outputs": "y"}, "'outputs' must be an array"),
        ({"outputs": [{"name": "y", "parameters": {"classification": 2}}]}, "classification extension"),
        ({"parameters": []}, "'parameters' must be an object"),
        ({"inputs": {"a": 1}}, "'inputs': an array"),
        ({"inputs": ["a"]}, "inputs\\[0\\] must be an object"),
    ],
)
def test_request_structure_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_request(body(**overrides), MODEL_INPUTS, MODEL_OUTPUTS)


def test_non_finite_outputs_travel_as_strings() -> None:
    response = encode_response("m", "1.0.0", {"y": np.array([np.nan, np.inf, -np.inf, 1.5], np.float32)}, "i")
    text = json.dumps(response, allow_nan=False)
    assert json.loads(text)["outputs"][0]["data"] == ["NaN", "Infinity", "-Infinity", 1.5]
    assert json.loads(text)["id"] == "i"


# --- item 13: holes in the decoder ---------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,data,message",
    [
        ([2, 3], [[1, 2], [3, 4, 5, 6]], "data\\[0\\] has 2 element\\(s\\), the shape \\[2, 3\\] needs 3"),
        ([2, 3], [[1, 2, 3], [4, 5, 6], []], "'data' has 3 element\\(s\\), the shape \\[2, 3\\] needs 2"),
        ([2, 3], [1, [2, 3, 4]], "data\\[0\\] is a number, the shape \\[2, 3\\] needs an array of 3 there"),
        ([2, 3], [[1, 2, 3], 4], "data\\[1\\] is a number, the shape \\[2, 3\\] needs an array of 3 there"),
        ([2, 3], [1, 2, [3, 4], 5, 6], "'data' has 5 element\\(s\\), the shape \\[2, 3\\] needs 2"),
        ([2, 2, 1], [[[1], [2]], [[3], 4]], "data\\[1\\]\\[1\\] is a number, the shape \\[2, 2, 1\\] needs an array"),
        ([4], [[1, 2], [3, 4]], "nested deeper than the shape's 1 dimension"),
    ],
    ids=[
        "ragged rows",
        "extra empty row",
        "list among numbers",
        "number among rows",
        "mixed",
        "deep ragged",
        "too deep",
    ],
)
def test_nested_data_must_have_the_shape_it_declares(shape: list[int], data: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        decode_tensor("t", "FP32", shape, data)


def test_nested_data_with_empty_dimensions_decodes() -> None:
    assert decode_tensor("t", "FP32", [2, 0], [[], []]).shape == (2, 0)
    assert decode_tensor("t", "INT64", [1, 2, 1], [[[1], [2]]]).tolist() == [[[1], [2]]]


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.7976931348623159e308"])
@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
def test_json_numbers_beyond_fp64_are_refused_not_made_infinite(number: str, datatype: str) -> None:
    data = json.loads(f"[0.5, {number}]")
    with pytest.raises(InvalidRequest, match='element 1 is beyond the range of a 64-bit float.*"Infinity"'):
        decode_tensor("t", datatype, [2], data)
    assert np.isinf(decode_tensor("t", datatype, [2], [0.5, "-Infinity"])[1])  # the way to say it


@pytest.mark.parametrize(
    "shape,message",
    [
        ([0, 10**20], "too large"),
        ([0, 2**62, 2**62], "too large"),
        ([1] * 100, "100 dimensions"),
    ],
    ids=["dim over intp", "size over intp", "rank 100"],
)
def test_shapes_numpy_cannot_hold_are_refused(shape: list[int], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        decode_tensor("t", "FP32", shape, [] if 0 in shape else [1.0])


def test_lone_surrogates_in_bytes_are_refused_and_pairs_accepted() -> None:
    data = json.loads('["a", "\\ud83d\\ude00", "\\ud83d"]')  # a pair (one emoji), then a lone high surrogate
    with pytest.raises(InvalidRequest, match="BYTES element 2 is not valid Unicode: it holds a lone surrogate"):
        decode_tensor("t", "BYTES", [3], data)
    assert decode_tensor("t", "BYTES", [2], data[:2]).tolist() == ["a", "\U0001f600"]
    split = json.loads('["\\ud83d", "\\ude00"]')  # a pair split across two elements is two lone halves
    with pytest.raises(InvalidRequest, match="element 0"):
        decode_tensor("t", "BYTES", [2], split)
