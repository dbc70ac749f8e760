"""Open Inference Protocol v2 answers: output tensors as JSON (``encode_response``), or in the
binary tensor data extension's layout after a JSON header (``encode_body``); gRPC's
``raw_output_contents`` take the same layout (``binary_tensor_data``). Pure functions over numpy.

JSON has no NaN or infinity: they are written as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``. BYTES elements are JSON strings, or in binary each a 4-byte little-endian length
and its bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from catalog.serving.oip import BYTES_LENGTH, datatype_of

__all__ = ["binary_tensor_data", "encode_binary_tensor", "encode_body", "encode_response", "encode_tensor"]


def _json_values(array: np.ndarray) -> list[Any]:
    flat = array.reshape(-1)
    if flat.dtype.kind == "f" and not bool(np.isfinite(flat).all()):
        return [
            x if math.isfinite(x) else ("NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity"))
            for x in flat.tolist()
        ]
    if flat.dtype.kind in "OS":
        return [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in flat.tolist()]
    return flat.tolist()


def encode_tensor(name: str, array: np.ndarray) -> dict[str, object]:
    """One output tensor as an OIP JSON object (data flat, row-major)."""
    array = np.asarray(array)
    return {"name": name, "datatype": datatype_of(array.dtype), "shape": list(array.shape), "data": _json_values(array)}


def encode_response(
    model_name: str, model_version: str, outputs: Mapping[str, np.ndarray], request_id: str | None = None
) -> dict[str, object]:
    """The inference response object; ``id`` is echoed when the request had one."""
    response: dict[str, object] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = [encode_tensor(name, array) for name, array in outputs.items()]
    return response


def encode_binary_tensor(array: np.ndarray) -> bytes:
    """A tensor's data in the binary extension's layout (gRPC's raw contents too), as bytes."""
    data = binary_tensor_data(array)
    return data if isinstance(data, bytes) else data.tobytes()


def binary_tensor_data(array: np.ndarray) -> bytes | memoryview:
    """``encode_binary_tensor``'s data, for a fixed-size datatype as a view of the little-endian
    array's bytes (not copied: ``b"".join`` takes it), for BYTES as bytes."""
    if datatype_of(array.dtype) != "BYTES":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).reshape(-1).view(np.uint8).data
    parts: list[bytes] = []
    for item in array.reshape(-1).tolist():
        raw = item if isinstance(item, bytes) else str(item).encode("utf-8")
        parts += (BYTES_LENGTH.pack(len(raw)), raw)
    return b"".join(parts)


def encode_body(
    model_name: str,
    model_version: str,
    outputs: Mapping[str, np.ndarray],
    request_id: str | None = None,
    binary: Collection[str] = (),
) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON part when outputs named in ``binary`` follow
    it as binary data (the ``Inference-Header-Content-Length``; None: the body is all JSON)."""
    raw: list[bytes | memoryview] = []

    def tensor(name: str, array: np.ndarray) -> dict[str, object]:
        if name not in binary:
            return encode_tensor(name, array)
        array = np.asarray(array)
        raw.append(binary_tensor_data(array))
        shape, size = list(array.shape), len(raw[-1])
        return {"name": name, "datatype": datatype_of(array.dtype), "shape": shape,
                "parameters": {"binary_data_size": size}}  # fmt: skip

    response = encode_response(model_name, model_version, {}, request_id)
    response["outputs"] = [tensor(name, array) for name, array in outputs.items()]
    text = json.dumps(response, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return (b"".join([text, *raw]), len(text)) if raw else (text, None)
