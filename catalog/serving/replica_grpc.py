"""The replica over gRPC: ``inference.GRPCInferenceService`` (catalog/serving/oip_grpc/inference.proto)
beside the REST app, on the same loaded model (``replica_model.LoadedModel``).

Requests are checked by the code that checks REST's (``catalog.serving.oip``): each input known,
given once, of the model's datatype and shape; its data either typed ``contents`` (the field of its
datatype) or ``raw_input_contents`` (the binary tensor layout: little-endian, row-major, BYTES
length-prefixed), never both. Outputs are answered as ``raw_output_contents``. A refused request is
``INVALID_ARGUMENT`` with the reason (a message that is not protobuf that parses too), another model
or version ``NOT_FOUND``; the server stays up.
Every answer's trailing metadata names the model, version and digest served (``x-model-name``,
``x-model-version``, ``x-model-digest``), as REST's headers do.

A ModelInfer message over ``max_message_bytes`` is refused as ``INVALID_ARGUMENT`` naming both
sizes; gRPC itself drops a message over twice that limit (``RESOURCE_EXHAUSTED``) before it is read
whole, so memory stays bounded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
from google.protobuf.message import DecodeError, Message

from catalog.errors import InvalidRequest, ModelcatError
from catalog.serving import DEFAULT_MAX_BODY_BYTES
from catalog.serving.listen import start_grpc_server
from catalog.serving.oip import (
    InferenceRequest,
    InputSet,
    TensorMeta,
    datatype_of,
    decode_binary_tensor,
    decode_tensor,
    requested_outputs,
)
from catalog.serving.oip_answer import binary_tensor_data
from catalog.serving.oip_grpc import SERVICE
from catalog.serving.oip_grpc import inference_pb2 as pb
from catalog.serving.oip_grpc.wire import length_delimited, split_field
from catalog.serving.replica import PLATFORM, SERVER_NAME, ReplicaMetrics, server_version
from catalog.serving.replica_model import LoadedModel, new_run_options
from catalog.serving.signature import signature_info, signature_text

if TYPE_CHECKING:
    from catalog.signing.verify import Verified

__all__ = [
    "GrpcReplica",
    "decode_infer_request",
    "encode_infer_response",
    "read_infer_request",
    "start_grpc",
]

log = logging.getLogger("catalog.serving.replica_grpc")

# the InferTensorContents field that carries each datatype's elements (FP16 has none: raw only)
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 413: grpc.StatusCode.INVALID_ARGUMENT,
          404: grpc.StatusCode.NOT_FOUND, 503: grpc.StatusCode.UNAVAILABLE}  # fmt: skip


def _parameters(entries: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    values = {}
    for key, parameter in entries.items():
        kind = parameter.WhichOneof("parameter_choice")
        values[key] = getattr(parameter, kind) if kind else None
    return values


def _typed_data(tensor: pb.ModelInferRequest.InferInputTensor, where: str) -> list[Any]:
    """The elements of an input given as typed ``contents``: only its datatype's field may hold them."""
    wanted = _CONTENTS.get(tensor.datatype)
    present = [field.name for field, _ in tensor.contents.ListFields()]
    stray = [name for name in present if name != wanted]
    if wanted is None and tensor.datatype == "FP16" and (stray or 0 not in tensor.shape):
        raise InvalidRequest(f"{where}: FP16 data has no typed contents field; send it in raw_input_contents")
    if stray:
        field = f"in {wanted}" if wanted else "nowhere"
        raise InvalidRequest(f"{where}: {tensor.datatype} data goes {field}, not in {', '.join(stray)}")
    if wanted is None:
        return []  # an unknown datatype: decode_tensor names it
    data = list(getattr(tensor.contents, wanted))
    if wanted == "bytes_contents":
        try:
            return [item.decode("utf-8") for item in data]
        except UnicodeDecodeError:
            raise InvalidRequest(f"{where}: a BYTES element is not valid UTF-8") from None
    return data


def decode_infer_request(
    request: pb.ModelInferRequest, model: LoadedModel, raw: Sequence[bytes | memoryview] | None = None
) -> InferenceRequest:
    """A ModelInfer request checked against ``model`` as REST's are (``oip.InputSet``). ``raw``: its
    ``raw_input_contents`` when they were cut out of the message before parsing (``read_infer_request``),
    else the message's own."""
    if raw is None:
        raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidRequest(
            f"raw_input_contents has {len(raw)} entries but the request has {len(request.inputs)} input(s): "
            "one entry per input, in the order of inputs"
        )
    given = InputSet(model.inputs)
    for i, tensor in enumerate(request.inputs):
        meta = given.admit(tensor.name)
        where = f"input {tensor.name!r}"
        shape = list(tensor.shape)
        given.check(meta, tensor.datatype, shape)
        if raw:
            if tensor.HasField("contents"):
                raise InvalidRequest(f"{where} has contents while the request has raw_input_contents: use one")
            data = memoryview(raw[i])
            given.add(tensor.name, decode_binary_tensor(tensor.name, tensor.datatype, shape, data,
                                                        f"raw_input_contents[{i}]'s size"))  # fmt: skip
        else:
            given.add(tensor.name, decode_tensor(tensor.name, tensor.datatype, shape, _typed_data(tensor, where)))
    decoded = given.complete()
    asked = [{"name": o.name, "parameters": _parameters(o.parameters)} for o in request.outputs]
    names, _ = requested_outputs(asked or None, model.outputs)
    return InferenceRequest(
        inputs=decoded, outputs=names, id=request.id or None, parameters=_parameters(request.parameters)
    )


def encode_infer_response(name: str, version: str, outputs: Mapping[str, np.ndarray], request_id: str | None) -> bytes:
    """The serialized ModelInfer response: every output's data in ``raw_output_contents``, in the
    order of ``outputs``. The message without the data is serialized by protobuf and each output's
    bytes appended as one more ``raw_output_contents`` field (a message's fields may come in any
    order), so the data is copied once (protobuf copied it in, then again serializing, at up to
    milliseconds per MB here)."""
    response = pb.ModelInferResponse(model_name=name, model_version=version, id=request_id or "")
    parts: list[bytes | memoryview] = [b""]
    for output, array in outputs.items():
        array = np.asarray(array)
        response.outputs.add(name=output, datatype=datatype_of(array.dtype), shape=array.shape)
        data = binary_tensor_data(array)
        parts += (length_delimited(_RAW_OUTPUT, len(data)), data)
    parts[0] = response.SerializeToString()
    return b"".join(parts)


# raw_output_contents' field number, for the fields appended after the rest of the answer
_RAW_OUTPUT = pb.ModelInferResponse.DESCRIPTOR.fields_by_name["raw_output_contents"].number
# raw_input_contents' field number, cut out of a request before protobuf parses the rest
_RAW_INPUT = pb.ModelInferRequest.DESCRIPTOR.fields_by_name["raw_input_contents"].number


@dataclass(frozen=True)
class _Infer:
    """A ModelInfer request as read: the message without its ``raw_input_contents`` and those as
    views of the bytes received (protobuf would copy each into a bytes object of its own)."""

    message: pb.ModelInferRequest
    raw: list[memoryview]


def read_infer_request(data: bytes) -> _Infer:
    """A serialized ModelInfer request, its raw contents left where they are. DecodeError when it
    is not a well-formed message."""
    try:
        rest, raw = split_field(data, _RAW_INPUT)
    except ValueError as e:
        raise DecodeError(str(e)) from None
    return _Infer(pb.ModelInferRequest.FromString(rest), raw)


def _serialized(message: Message | bytes) -> bytes:
    """A response as gRPC sends it: ModelInfer's is serialized already (``encode_infer_response``)."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def _tensor_metadata(meta: TensorMeta) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(name=meta.name, datatype=meta.datatype, shape=meta.shape)


@dataclass(frozen=True)
class _Unread:
    """A request message refused before it is decoded (over the size limit, or not protobuf that
    parses), kept as the reason only."""

    reason: str


class _NotServed(ModelcatError):
    status_code = 404


class GrpcReplica:
    """The service's six calls for one model version (``name`` ``version``); with ``metrics`` (the
    REST app's, ``app.state.metrics``) each call is counted as REST's are, its route ``grpc_<call>``
    and its code the HTTP status REST would answer."""

    def __init__(
        self,
        model: LoadedModel,
        name: str,
        version: str,
        *,
        max_message_bytes: int,
        signed_by: Verified | None,
        metrics: ReplicaMetrics | None = None,
    ) -> None:
        self.model, self.name, self.version, self.limit = model, name, version, max_message_bytes
        self.metrics = metrics
        # every answer's trailing metadata, as REST's headers: a router checks who answered
        self.identity = (("x-model-name", name), ("x-model-version", version), ("x-model-digest", model.digest))
        signed = signature_info(signed_by)
        self.metadata = pb.ModelMetadataResponse(
            name=name,
            versions=[version],
            platform=PLATFORM,
            inputs=[_tensor_metadata(m) for m in model.inputs],
            outputs=[_tensor_metadata(m) for m in model.outputs],
            properties={"model_digest": model.digest} | ({"model_signature": signature_text(signed)} if signed else {}),
        )

    def _served(self, name: str, version: str) -> None:
        if name != self.name:
            raise _NotServed(f"model {name!r} is not served here; this replica serves {self.name} {self.version}")
        if version and version != self.version:
            raise _NotServed(f"model {name} version {version!r} is not served here; this replica serves {self.version}")

    def server_live(self, request: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    def server_ready(self, request: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)  # the server starts only once the model is verified and loaded

    def server_metadata(self, request: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=server_version(), extensions=[])

    def model_ready(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        self._served(request.name, request.version)
        return pb.ModelReadyResponse(ready=True)

    def model_metadata(self, request: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        self._served(request.name, request.version)
        return self.metadata

    def model_infer(self, request: _Infer) -> bytes:
        self._served(request.message.model_name, request.message.model_version)
        parsed = decode_infer_request(request.message, self.model, request.raw)
        outputs = self.model.run(parsed.inputs, parsed.outputs, new_run_options())
        return encode_infer_response(self.name, self.version, outputs, parsed.id)

    def _answer(self, route: str, method: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        """``method`` as a gRPC handler: a ModelcatError becomes its status (INVALID_ARGUMENT,
        NOT_FOUND, ...) with its message, anything else INTERNAL (the traceback goes to the log)."""
        in_flight = self.metrics.in_flight.labels(self.name, self.version) if self.metrics else None

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            started, status = time.perf_counter(), 200
            context.set_trailing_metadata(self.identity)
            if in_flight is not None and route == "grpc_model_infer":
                in_flight.inc()
            try:
                if isinstance(request, _Unread):
                    raise InvalidRequest(request.reason)
                return method(request)
            except ModelcatError as e:
                status, message = getattr(e, "status_code", 500), str(e)
            except Exception as e:  # an answer, not a dropped call
                log.exception("%s failed", route)
                status, message = 500, f"internal error: {type(e).__name__}: {e}"
            finally:
                if in_flight is not None and route == "grpc_model_infer":
                    in_flight.dec()
                if self.metrics is not None:
                    self.metrics.observe(route, status, time.perf_counter() - started)
            context.abort(_CODES.get(status, grpc.StatusCode.INTERNAL), message)

        return call

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's handlers; a message that does not parse is INVALID_ARGUMENT (not gRPC's
        INTERNAL), and ModelInfer's is measured before it is decoded."""

        def reader(message: type[Any], limit: int | None, parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
            def read(data: bytes) -> Any:
                if limit is not None and len(data) > limit:
                    return _Unread(f"the request message is {len(data):,} bytes, over the limit of {limit:,}")
                try:
                    return parse(data)
                except DecodeError as e:
                    return _Unread(f"the request is not a {message.DESCRIPTOR.name} message: {e}")

            return read

        def unary(
            method: Callable[[Any], Any],
            message: type[Any],
            limit: int | None = None,
            parse: Callable[[bytes], Any] | None = None,
        ) -> grpc.RpcMethodHandler[Any, Any]:
            return grpc.unary_unary_rpc_method_handler(
                self._answer("grpc_" + method.__name__, method),
                request_deserializer=reader(message, limit, parse or message.FromString),
                response_serializer=_serialized,
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "ServerLive": unary(self.server_live, pb.ServerLiveRequest),
                "ServerReady": unary(self.server_ready, pb.ServerReadyRequest),
                "ServerMetadata": unary(self.server_metadata, pb.ServerMetadataRequest),
                "ModelReady": unary(self.model_ready, pb.ModelReadyRequest),
                "ModelMetadata": unary(self.model_metadata, pb.ModelMetadataRequest),
                "ModelInfer": unary(self.model_infer, pb.ModelInferRequest, self.limit, read_infer_request),
            },
        )


def start_grpc(
    model: LoadedModel,
    name: str,
    version: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_message_bytes: int = DEFAULT_MAX_BODY_BYTES,
    signed_by: Verified | None = None,
    metrics: ReplicaMetrics | None = None,
    workers: int | None = None,
) -> tuple[grpc.Server, int]:
    """Start serving ``model`` over gRPC on ``host``:``port`` (0 picks a free port) in threads of its
    own; returns the server (``stop(grace)`` ends it) and the port. A port in use is a UsageError."""
    replica = GrpcReplica(
        model, name, version, max_message_bytes=max_message_bytes, signed_by=signed_by, metrics=metrics
    )
    return start_grpc_server(
        replica.handler(), host, port, max_message_bytes=max_message_bytes, workers=workers, thread_name="grpc-replica"
    )
