"""The router reads a gRPC request's model and version off the wire (``model_target``) without
parsing its tensors: what protobuf would read, for well-formed messages, and a clear refusal else."""

from __future__ import annotations

import pytest

from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.router_grpc import model_target, prediction_of_message


def test_model_target_reads_what_protobuf_reads() -> None:
    request = pb.ModelInferRequest(model_name="fraud-scorer", model_version="1.3.0", id="r-1")
    request.parameters["priority"].int64_param = 3
    request.inputs.add(name="x", datatype="FP32", shape=[1, 4]).parameters["p"].double_param = 0.5
    request.raw_input_contents.append(bytes(range(256)) * 40)
    assert model_target(request.SerializeToString()) == ("fraud-scorer", "1.3.0")
    assert model_target(pb.ModelInferRequest(model_name="m").SerializeToString()) == ("m", "")
    assert model_target(pb.ModelMetadataRequest(name="m", version="2.0.0").SerializeToString()) == ("m", "2.0.0")
    assert model_target(pb.ModelReadyRequest(name="m").SerializeToString()) == ("m", "")
    assert model_target(b"") == ("", "")


def test_model_target_takes_the_last_of_repeated_fields_as_protobuf_does() -> None:
    first = pb.ModelInferRequest(model_name="a", model_version="1.0.0").SerializeToString()
    second = pb.ModelInferRequest(model_version="2.0.0").SerializeToString()
    data = first + second
    parsed = pb.ModelInferRequest.FromString(data)
    assert model_target(data) == (parsed.model_name, parsed.model_version) == ("a", "2.0.0")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x0a\x10short", "field 1 runs past the end of the message"),
        (b"\x0a", "the message ends inside a field"),
        (b"\x0b", "wire type 3 of field 1"),
        (b"\x0a\x02\xff\xfe", "the model name or version is not UTF-8"),
        (b"\x1d\x00\x00", "the last field runs past the end of the message"),
        (b"\x08" + b"\xff" * 11, "a varint longer than 10 bytes"),
    ],
)
def test_a_malformed_message_is_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        model_target(data)


def test_the_prediction_is_the_first_element_of_the_first_output() -> None:
    raw = pb.ModelInferResponse()
    raw.outputs.add(name="score", datatype="FP32", shape=[1, 1])
    raw.raw_output_contents.append(b"\x00\x00\x40\x3f")  # 0.75 little-endian
    assert prediction_of_message(raw.SerializeToString()) == 0.75
    typed = pb.ModelInferResponse()
    typed.outputs.add(name="label", datatype="INT64", shape=[2]).contents.int64_contents.extend([1, 0])
    assert prediction_of_message(typed.SerializeToString()) == 1.0
    text = pb.ModelInferResponse()
    text.outputs.add(name="label", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"yes")
    assert prediction_of_message(text.SerializeToString()) is None
    assert prediction_of_message(b"\x0a\x10short") is None
    assert prediction_of_message(pb.ModelInferResponse().SerializeToString()) is None
