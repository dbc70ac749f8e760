"""Requests through a router's gRPC side (``modelcat smoke --protocol grpc``).

An OIP v2 request as ``catalog.deploy.traffic`` builds it (JSON tensors) becomes a ``ModelInferRequest``
with its data in ``raw_input_contents``, as Triton's and KServe's clients send it by default; the
sticky key goes in the call's metadata, and the version and digest that answered are read from the
trailing metadata the router adds (``x-model-version``, ``x-model-digest``) and the message's own
``model_version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import grpc

from catalog.serving.oip import decode_tensor
from catalog.serving.oip_answer import encode_binary_tensor
from catalog.serving.oip_grpc import inference_pb2 as pb

__all__ = ["GrpcCaller", "RoutedAnswer", "infer_message"]

_MAX_MESSAGE = 64 * 1024 * 1024  # the router's default limit on a request
_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


def infer_message(model: str, body: Mapping[str, Any]) -> pb.ModelInferRequest:
    """``body`` (an OIP v2 JSON request: ``inputs`` with name, datatype, shape, data) as a
    ``ModelInferRequest`` for ``model`` with raw contents, checked as a replica checks JSON tensors."""
    message = pb.ModelInferRequest(model_name=model)
    for entry in body["inputs"]:
        array = decode_tensor(entry["name"], entry["datatype"], entry["shape"], entry["data"])
        message.inputs.add(name=entry["name"], datatype=entry["datatype"], shape=list(array.shape))
        message.raw_input_contents.append(encode_binary_tensor(array))
    return message


@dataclass(frozen=True, slots=True)
class RoutedAnswer:
    """One request's outcome through a router, over either protocol: ``failure`` (status and message)
    or the version and digest that answered."""

    failure: str | None = None
    version: str = ""  # the router's x-model-version
    said: str | None = None  # the answer's own model_version
    digest: str = ""  # the router's x-model-digest


class GrpcCaller:
    """A channel to one router's gRPC address; ``infer`` is safe to call from several threads."""

    def __init__(self, address: str, timeout: float = 30.0) -> None:
        options = [("grpc.max_send_message_length", _MAX_MESSAGE), ("grpc.max_receive_message_length", -1)]
        self._channel = grpc.insecure_channel(address, options=options)
        self._infer = self._channel.unary_unary(
            f"/{_SERVICE}/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        self._timeout = timeout
        self.address = address

    def infer(self, message: pb.ModelInferRequest, metadata: Mapping[str, str]) -> RoutedAnswer:
        try:
            response, call = self._infer.with_call(message, timeout=self._timeout, metadata=tuple(metadata.items()))
        except grpc.RpcError as e:  # a grpc.Call too: the status code and details
            code = e.code().name if hasattr(e, "code") else "UNKNOWN"
            details = e.details() if hasattr(e, "details") else str(e)
            return RoutedAnswer(failure=f"{code}: {(details or '')[:200]}")
        trailing = dict(call.trailing_metadata() or ())
        return RoutedAnswer(
            version=str(trailing.get("x-model-version", "")),
            said=response.model_version,
            digest=str(trailing.get("x-model-digest", "")),
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
