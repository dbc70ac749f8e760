"""The replica's ModelInfer response, written without protobuf's serializer for the tensors' data,
reads back as the message protobuf itself builds."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.replica_grpc import encode_infer_response


def protobuf_built(outputs: dict[str, np.ndarray], request_id: str) -> pb.ModelInferResponse:
    """The response as protobuf builds it field by field, each output's data in the binary layout."""
    response = pb.ModelInferResponse(model_name="m", model_version="1", id=request_id)
    for name, array in outputs.items():
        datatype = {"float32": "FP32", "float16": "FP16", "int64": "INT64", "bool": "BOOL", "object": "BYTES"}
        response.outputs.add(name=name, datatype=datatype[array.dtype.name], shape=array.shape)
        if array.dtype == object:
            data = b"".join(len(s.encode()).to_bytes(4, "little") + s.encode() for s in array.reshape(-1))
        else:
            data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        response.raw_output_contents.append(data)
    return response


@pytest.mark.parametrize(
    "outputs",
    [
        {"y": np.arange(6, dtype=np.float32).reshape(2, 3)},
        {"y": np.zeros((0, 3), np.float32), "n": np.array(7, np.int64)},  # no data; a scalar
        {"h": np.array([0.5, -2], np.float16), "b": np.array([True, False]), "s": np.array(["a", "é", ""], object)},
        {"y": np.ones(32, np.float32)},  # 128 bytes: the first length of two varint bytes
        {"y": np.ones((256, 1024), np.float32), "z": np.ones(5, np.int64)},  # 1 MiB: three varint bytes
        {},
    ],
    ids=["fp32", "empty-and-scalar", "fp16-bool-bytes", "128-bytes", "1MiB-then-another", "no-outputs"],
)
def test_infer_response_reads_back_as_the_message_protobuf_builds(outputs: dict[str, np.ndarray]) -> None:
    written = encode_infer_response("m", "1", outputs, "req-1")

    assert pb.ModelInferResponse.FromString(written) == protobuf_built(outputs, "req-1")


def test_infer_response_without_an_id_has_none() -> None:
    written = pb.ModelInferResponse.FromString(encode_infer_response("m", "1", {"y": np.ones(2, np.float32)}, None))

    assert written.id == "" and written == protobuf_built({"y": np.ones(2, np.float32)}, "")
