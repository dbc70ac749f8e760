"""The wire reader (catalog/serving/oip_grpc/wire.py) agrees with protobuf on the messages it cuts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.oip_grpc import wire

RAW_INPUT_CONTENTS = pb.ModelInferRequest.DESCRIPTOR.fields_by_name["raw_input_contents"].number

names = st.text(max_size=12)


@st.composite
def requests(draw: st.DrawFn) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=draw(names), model_version=draw(names), id=draw(names))
    for _ in range(draw(st.integers(0, 3))):
        tensor = request.inputs.add(name=draw(names), datatype="FP32", shape=draw(st.lists(st.integers(-1, 9))))
        tensor.parameters["p"].int64_param = draw(st.integers(-(2**40), 2**40))
    request.parameters["priority"].double_param = draw(st.floats(allow_nan=False))
    request.raw_input_contents.extend(draw(st.lists(st.binary(max_size=300), max_size=4)))
    return request


@given(requests(), st.booleans())
def test_split_field_cuts_out_the_raw_contents_protobuf_reads_and_keeps_the_rest(
    request: pb.ModelInferRequest, twice: bool
) -> None:
    data = request.SerializeToString()
    if twice:  # a message may come in two parts: repeated fields add up, singular ones: the last wins
        data += request.SerializeToString()
    parsed = pb.ModelInferRequest.FromString(data)
    rest, values = wire.split_field(data, RAW_INPUT_CONTENTS)
    assert [bytes(v) for v in values] == list(parsed.raw_input_contents)
    without = pb.ModelInferRequest.FromString(rest)
    assert not without.raw_input_contents
    parsed.ClearField("raw_input_contents")
    assert without == parsed


def test_the_raw_contents_are_views_of_the_message_not_copies() -> None:
    request = pb.ModelInferRequest(model_name="m", raw_input_contents=[b"\x01" * 1000, b"\x02" * 10])
    data = request.SerializeToString()
    _, values = wire.split_field(data, RAW_INPUT_CONTENTS)
    assert [v.obj is data for v in values] == [True, True]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x3a\x10short", "field 7 runs past the end of the message"),
        (b"\x3a", "the message ends inside a field"),
        (b"\x3b", "wire type 3 of field 7"),
        (b"\x38\x01", "field 7 has wire type 0, not a length-delimited value"),
    ],
)
def test_a_malformed_message_is_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        wire.split_field(data, RAW_INPUT_CONTENTS)


@given(st.integers(0, 2**64 - 1))
def test_a_varint_reads_back_as_written(value: int) -> None:
    assert wire.read_varint(wire.varint(value), 0) == (value, len(wire.varint(value)))
