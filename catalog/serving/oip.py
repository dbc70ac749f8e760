"""Open Inference Protocol v2 (REST, JSON) tensors: datatypes and request decoding (answers are
written by ``catalog.serving.oip_answer``).

Pure functions over numpy; no IO. A request is checked against the model's tensors before anything
runs: names, datatypes, element types, shapes against fixed dimensions, and data against shape
(flat with the right length, or nested exactly as the shape says). Every refusal is an
``InvalidRequest`` naming the tensor and what is wrong.

JSON has no NaN or infinity: floating-point data may carry them as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (requests and responses alike); a number too large for a double
(``1e400``) is refused, not read as infinity. BYTES tensors travel as JSON strings, which must be
valid Unicode (a lone surrogate escape is refused).

The binary tensor data extension (Triton's and KServe's ``binary_tensor_data``): when the request
has an ``Inference-Header-Content-Length`` header, the body is that many bytes of JSON followed by
the data of every input whose parameters carry ``binary_data_size``, in the order of ``inputs``:
little-endian, row-major, BOOL one byte 0 or 1, BYTES each element a 4-byte little-endian length
and its bytes (UTF-8 here, as onnxruntime's strings are). Fixed-size data is not copied: the arrays
are views of the body. An output is answered as binary when its ``binary_data`` parameter says so,
or else the request's ``binary_data_output`` does (``oip_answer.encode_body``).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catalog.errors import InvalidRequest, ModelcatError

__all__ = [
    "BYTES_LENGTH",
    "DATATYPES",
    "InferenceRequest",
    "InputSet",
    "TensorMeta",
    "datatype_of",
    "decode_binary_tensor",
    "decode_payload",
    "decode_tensor",
    "load_json",
    "parse_request",
    "requested_outputs",
]

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_KIND = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
BYTES_LENGTH = struct.Struct("<I")  # a BYTES element's length prefix in binary data
_SURROGATE = "it holds a lone surrogate (a \\uD800-\\uDFFF escape that is not half of a pair)"
MAX_RANK = 32  # dimensions of a request tensor (numpy 1 holds no more; no model needs more)
_MAX_SPAN = np.iinfo(np.intp).max // 16  # the product of the nonzero dims numpy can index

Dim = int | str | None  # fixed size, symbolic name, or unknown


@dataclass(frozen=True, slots=True)
class TensorMeta:
    """One model input or output: OIP datatype and dimensions; ``rank_known`` is False when the
    runtime cannot tell a scalar from a tensor of unknown rank."""

    name: str
    datatype: str
    dims: tuple[Dim, ...]
    rank_known: bool = True

    @property
    def shape(self) -> list[int]:
        """The OIP shape: fixed sizes, -1 for symbolic or unknown dimensions."""
        return [d if isinstance(d, int) else -1 for d in self.dims]

    def as_metadata(self) -> dict[str, object]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """A decoded request: ``inputs`` in the model's order, ``outputs`` the names to return."""

    inputs: dict[str, np.ndarray]
    outputs: tuple[str, ...]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    binary_outputs: frozenset[str] = frozenset()  # outputs to answer as binary data


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The OIP datatype of a numpy dtype (strings and objects are BYTES)."""
    if dtype.kind in "OUS":
        return "BYTES"
    try:
        return _BY_KIND[np.dtype(dtype)]
    except KeyError:
        raise ModelcatError(f"numpy dtype {dtype} has no Open Inference Protocol datatype") from None


def _reject_constant(token: str) -> None:
    raise InvalidRequest(f"request body is not valid JSON: {token} is not a JSON value (write it as a string)")


def _flatten(data: object, dims: tuple[int, ...], where: str) -> list[Any]:
    """Row-major elements of ``data``: a flat array, or arrays nested exactly as ``dims`` says."""
    if not isinstance(data, list):
        raise InvalidRequest(f"{where}: 'data' must be an array, not {_json_type(data)}")
    if not any(type(x) is list for x in data):
        return data
    rank, shape = len(dims), list(dims)
    deeper = f"{where}: 'data' is nested deeper than the shape's {rank} dimension(s)"
    if rank < 2:
        raise InvalidRequest(deeper)

    def label(path: tuple[int, ...]) -> str:
        return "data" + "".join(f"[{i}]" for i in path) if path else "'data'"

    flat: list[Any] = []
    stack: list[tuple[Iterator[tuple[int, Any]], tuple[int, ...]]] = []

    def enter(items: list[Any], path: tuple[int, ...]) -> None:
        innermost = len(path) == rank - 1
        if innermost and any(type(x) is list for x in items):
            raise InvalidRequest(deeper)
        want = dims[len(path)]
        if len(items) != want:
            raise InvalidRequest(f"{where}: {label(path)} has {len(items)} element(s), the shape {shape} needs {want}")
        if innermost:
            flat.extend(items)
        else:
            stack.append((enumerate(items), path))

    enter(data, ())
    while stack:  # iterative, so hostile nesting cannot exhaust the stack
        items, path = stack[-1]
        for i, item in items:
            if type(item) is not list:
                raise InvalidRequest(
                    f"{where}: {label((*path, i))} is {_json_type(item)}, "
                    f"the shape {shape} needs an array of {dims[len(path) + 1]} there"
                )
            enter(item, (*path, i))
            break
        else:
            stack.pop()
    return flat


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return "null" if value is None else names.get(type(value), "an object")


def _first_bad(flat: Sequence[Any], ok: Any) -> int | None:
    return next((i for i, x in enumerate(flat) if not ok(x)), None)


def _convert(flat: list[Any], datatype: str, where: str) -> np.ndarray:
    dtype = DATATYPES[datatype]
    if datatype == "BOOL":
        ok, want = (lambda x: type(x) is bool), "true or false"
    elif datatype == "BYTES":
        ok, want = (lambda x: type(x) is str), "strings"
    elif dtype.kind in "iu":
        ok, want = (lambda x: type(x) is int), "integers"
    else:
        ok, want = (lambda x: type(x) in (int, float) or (type(x) is str and x in _NON_FINITE)), "numbers"
    bad = _first_bad(flat, ok)
    if bad is not None:
        raise InvalidRequest(f"{where}: {datatype} data must be {want}; element {bad} is {_json_type(flat[bad])}")
    if datatype == "BYTES":
        _check_unicode(flat, where)
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array
    if dtype.kind == "f":
        numbers = [_NON_FINITE[x] if type(x) is str else x for x in flat] if any(type(x) is str for x in flat) else flat
        try:
            source = np.array(numbers, dtype=np.float64)
        except OverflowError:
            raise InvalidRequest(f"{where}: a value is too large for {datatype}") from None
        if not bool(np.isfinite(source).all()):
            _check_finite_numbers(flat, where)
        with np.errstate(over="ignore"):
            array = source.astype(dtype)
        if dtype != np.float64 and bool((np.isinf(array) & np.isfinite(source)).any()):
            raise InvalidRequest(f"{where}: a value is out of the range of {datatype}")
        return array
    try:
        return np.array(flat, dtype=dtype)
    except OverflowError:
        info = np.iinfo(dtype) if dtype.kind in "iu" else None
        span = f" [{info.min}, {info.max}]" if info is not None else ""
        raise InvalidRequest(f"{where}: a value is out of the range of {datatype}{span}") from None


def _check_unicode(flat: list[str], where: str) -> None:
    """JSON can carry a lone surrogate (``"\\ud800"``); a string tensor holds UTF-8, which cannot."""
    try:
        "".join(flat).encode("utf-8")
    except UnicodeEncodeError:
        bad = _first_bad(flat, _is_unicode)
        raise InvalidRequest(f"{where}: BYTES element {bad} is not valid Unicode: {_SURROGATE}") from None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_finite_numbers(flat: list[Any], where: str) -> None:
    """Only the strings "Infinity" and "-Infinity" say infinity: a number that overflowed a double did not."""
    bad = _first_bad(flat, lambda x: type(x) is not float or math.isfinite(x))
    if bad is not None:
        raise InvalidRequest(
            f'{where}: element {bad} is beyond the range of a 64-bit float; write "Infinity" or "-Infinity" '
            "if infinity is meant"
        )


def _check_shape(shape: object, where: str) -> tuple[int, ...]:
    if not isinstance(shape, list) or any(type(d) is not int for d in shape):
        raise InvalidRequest(f"{where}: 'shape' must be an array of integers")
    if any(d < 0 for d in shape):
        raise InvalidRequest(f"{where}: 'shape' {shape} has a negative dimension")
    if len(shape) > MAX_RANK:
        raise InvalidRequest(f"{where}: 'shape' has {len(shape)} dimensions; at most {MAX_RANK} are supported")
    return tuple(shape)


def _check_tensor(datatype: object, shape: object, where: str) -> tuple[str, tuple[int, ...]]:
    """A tensor's datatype (one of the protocol's) and its dimensions (a valid shape)."""
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        known = ", ".join(DATATYPES)
        raise InvalidRequest(f"{where}: unknown datatype {datatype!r}; the protocol's datatypes are {known}")
    return datatype, _check_shape(shape, where)


def _check_span(dims: tuple[int, ...], where: str) -> None:
    if math.prod(d for d in dims if d) > _MAX_SPAN:  # even empty, numpy cannot describe it
        raise InvalidRequest(f"{where}: shape {list(dims)} is too large for an array, even an empty one")


def decode_tensor(name: str, datatype: object, shape: object, data: object) -> np.ndarray:
    """One OIP tensor as a numpy array: checks the datatype, element types and data length. ``data``
    is the JSON value, or its array already converted for this datatype and shape (``oip_json``)."""
    where = f"input {name!r}"
    datatype, dims = _check_tensor(datatype, shape, where)
    if isinstance(data, np.ndarray):
        _check_span(dims, where)
        return data.reshape(dims)
    flat = _flatten(data, dims, where)
    count = math.prod(dims)
    if len(flat) != count:
        raise InvalidRequest(f"{where}: shape {list(dims)} needs {count} element(s), but 'data' has {len(flat)}")
    _check_span(dims, where)
    return _convert(flat, datatype, where).reshape(dims)


def decode_binary_tensor(
    name: str, datatype: object, shape: object, data: memoryview, size_name: str = "binary_data_size"
) -> np.ndarray:
    """One OIP tensor from its binary data (the extension's layout, also gRPC's raw contents: errors
    call its size ``size_name``); fixed-size data is not copied."""
    where = f"input {name!r}"
    datatype, dims = _check_tensor(datatype, shape, where)
    count = math.prod(dims)
    _check_span(dims, where)
    if datatype == "BYTES":
        return _split_bytes(data, count, where).reshape(dims)
    dtype = DATATYPES[datatype]
    size, itemsize = len(data), dtype.itemsize
    if size % itemsize:
        raise InvalidRequest(
            f"{where}: {size_name} {size} is not a multiple of the {itemsize}-byte size of a {datatype} element"
        )
    if size // itemsize != count:
        raise InvalidRequest(
            f"{where}: shape {list(dims)} needs {count} element(s) ({count * itemsize} bytes), "
            f"but {size_name} is {size} bytes ({size // itemsize} element(s))"
        )
    if datatype == "BOOL":
        bad = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) > 1)
        if bad.size:
            raise InvalidRequest(f"{where}: BOOL element {int(bad[0])} is the byte {data[int(bad[0])]}, not 0 or 1")
    little = np.frombuffer(data, dtype=dtype.newbyteorder("<"))
    return little.astype(dtype, copy=False).reshape(dims)  # no copy on a little-endian machine


def _split_bytes(data: memoryview, count: int, where: str) -> np.ndarray:
    """BYTES elements from their length-prefixed layout: exactly ``count`` of them, filling ``data``."""
    elements: list[str] = []
    offset, end = 0, len(data)
    while offset < end:
        if len(elements) == count:
            raise InvalidRequest(f"{where}: the binary data has {end - offset} byte(s) after its {count} element(s)")
        if offset + 4 > end:
            raise InvalidRequest(f"{where}: BYTES element {len(elements)}'s 4-byte length runs past the tensor's data")
        (length,) = BYTES_LENGTH.unpack_from(data, offset)
        offset += 4
        if offset + length > end:
            raise InvalidRequest(
                f"{where}: BYTES element {len(elements)} says {length} byte(s), "
                f"past the end of the tensor's data ({end - offset} left)"
            )
        try:
            elements.append(str(data[offset : offset + length], "utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequest(f"{where}: BYTES element {len(elements)} is not valid UTF-8") from None
        offset += length
    if len(elements) != count:
        raise InvalidRequest(f"{where}: the shape needs {count} BYTES element(s), the binary data has {len(elements)}")
    array = np.empty(count, dtype=object)
    array[:] = elements
    return array


def _check_against(meta: TensorMeta, datatype: str, dims: tuple[int, ...], symbols: dict[str, tuple[str, int]]) -> None:
    where = f"input {meta.name!r}"
    if datatype != meta.datatype:
        raise InvalidRequest(f"{where} has datatype {datatype} but the model takes {meta.datatype}")
    if not meta.rank_known:
        return
    if len(dims) != len(meta.dims):
        raise InvalidRequest(
            f"{where}: shape {list(dims)} has {len(dims)} dimension(s) but the model takes {len(meta.dims)} {meta.shape}"
        )
    for axis, (got, want) in enumerate(zip(dims, meta.dims, strict=True)):
        if isinstance(want, int) and got != want:
            raise InvalidRequest(f"{where}: dimension {axis} is {got} but the model fixes it at {want} {meta.shape}")
        if isinstance(want, str):
            seen = symbols.setdefault(want, (meta.name, got))
            if seen[1] != got:
                raise InvalidRequest(
                    f"{where}: dimension {axis} ({want!r}) is {got} but input {seen[0]!r} has {want}={seen[1]}"
                )


class InputSet:
    """A request's inputs, checked against the model's as they come: each known and given once, of
    the model's datatype and shape (a symbolic dimension the same in every input naming it)."""

    def __init__(self, inputs: Sequence[TensorMeta]) -> None:
        self.inputs = inputs
        self.by_name = {m.name: m for m in inputs}
        self.decoded: dict[str, np.ndarray] = {}
        self.symbols: dict[str, tuple[str, int]] = {}

    def admit(self, name: str) -> TensorMeta:
        """The model's input ``name``; refuses an unknown or repeated one."""
        meta = self.by_name.get(name)
        if meta is None:
            raise InvalidRequest(f"unknown input {name!r}; the model's inputs are {', '.join(map(repr, self.by_name))}")
        if name in self.decoded:
            raise InvalidRequest(f"input {name!r} is given twice")
        return meta

    def check(self, meta: TensorMeta, datatype: object, shape: object) -> None:
        """Refuse a datatype or shape the model does not take for ``meta``."""
        if isinstance(datatype, str) and datatype in DATATYPES:
            _check_against(meta, datatype, _check_shape(shape, f"input {meta.name!r}"), self.symbols)

    def add(self, name: str, array: np.ndarray) -> None:
        self.decoded[name] = array

    def complete(self) -> dict[str, np.ndarray]:
        """Every input, in the model's order; refuses a request that misses one."""
        missing = [m.name for m in self.inputs if m.name not in self.decoded]
        if missing:
            raise InvalidRequest(f"missing input(s) {', '.join(map(repr, missing))}; the model needs every input")
        return {m.name: self.decoded[m.name] for m in self.inputs}


def _field(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise InvalidRequest(f"{where} has no {key!r}")
    return entry[key]


def _parameters(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where}: 'parameters' must be an object")
    return value


def _split_body(body: bytes | bytearray, header_length: str | None) -> tuple[bytes | bytearray, memoryview]:
    """The JSON part of a request body and the binary data after it (``Inference-Header-Content-Length``)."""
    if header_length is None:
        return body, memoryview(b"")
    text = header_length.strip()
    if not (text.isascii() and text.isdigit()):  # '²' is a digit to isdigit, not to int()
        raise InvalidRequest(f"the Inference-Header-Content-Length header {header_length!r} is not a byte count")
    length = int(text)
    if length > len(body):
        raise InvalidRequest(
            f"the Inference-Header-Content-Length header says {length} bytes of JSON, "
            f"past the end of the {len(body)}-byte body"
        )
    return body[:length], memoryview(body)[length:]


def _binary_size(parameters: Mapping[str, Any], where: str) -> int | None:
    if "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if type(size) is not int or size < 0:
        raise InvalidRequest(f"{where}: 'binary_data_size' must be a byte count, not {size!r}")
    return size


def parse_request(
    body: bytes | bytearray,
    inputs: Sequence[TensorMeta],
    outputs: Sequence[TensorMeta],
    header_length: str | None = None,
) -> InferenceRequest:
    """Decode and check an inference request body against the model's inputs and outputs.

    ``header_length`` is the request's ``Inference-Header-Content-Length`` header, if it has one."""
    text, binary = _split_body(body, header_length)
    return decode_payload(load_json(text, header_length), binary, inputs, outputs)


def load_json(text: bytes | bytearray, header_length: str | None) -> Any:
    """The request's JSON document (``json.loads``), or why it is not JSON."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        detail = e.args[0] if isinstance(e, ValueError) and e.args else "nested too deeply"
        if header_length is None and detail.startswith("Extra data"):
            detail += " (binary tensor data needs the Inference-Header-Content-Length header)"
        raise InvalidRequest(f"request body is not valid JSON: {detail}") from None


def decode_payload(
    payload: object, binary: memoryview, inputs: Sequence[TensorMeta], outputs: Sequence[TensorMeta]
) -> InferenceRequest:
    """A request from its JSON document (where an input's data may be converted already: see
    ``decode_tensor``) and the binary data after it."""
    if not isinstance(payload, dict):
        raise InvalidRequest(f"the request must be a JSON object, not {_json_type(payload)}")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidRequest("'id' must be a string")
    if request_id is not None and not _is_unicode(request_id):
        raise InvalidRequest(f"'id' is not valid Unicode: {_SURROGATE}")
    parameters = _parameters(payload.get("parameters"), "the request")
    entries = payload.get("inputs")
    if not isinstance(entries, list):
        raise InvalidRequest("the request needs 'inputs': an array of tensors")
    given = InputSet(inputs)
    offset = 0  # into the binary data
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidRequest(f"inputs[{i}] must be an object with name, shape, datatype and data")
        name = _field(entry, "name", f"inputs[{i}]")
        if not isinstance(name, str):
            raise InvalidRequest(f"inputs[{i}]: 'name' must be a string")
        meta = given.admit(name)
        where = f"input {name!r}"
        size = _binary_size(_parameters(entry.get("parameters"), where), where)
        datatype = _field(entry, "datatype", where)
        shape = _field(entry, "shape", where)
        if size is not None and "data" in entry:
            raise InvalidRequest(
                f"{where} has both 'data' and binary_data_size: send it as JSON or as binary, not both"
            )
        given.check(meta, datatype, shape)
        if size is None:
            given.add(name, decode_tensor(name, datatype, shape, _field(entry, "data", where)))
            continue
        if offset + size > len(binary):
            raise InvalidRequest(
                f"{where}: binary_data_size {size} runs past the end of the body "
                f"({len(binary) - offset} byte(s) of binary data left)"
            )
        given.add(name, decode_binary_tensor(name, datatype, shape, binary[offset : offset + size]))
        offset += size
    if offset != len(binary):
        raise InvalidRequest(
            f"the body has {len(binary) - offset} byte(s) of binary data after the inputs' binary_data_size"
        )
    decoded = given.complete()
    binary_default = _flag(parameters, "binary_data_output", "the request")
    names, binary_outputs = requested_outputs(payload.get("outputs"), outputs, binary_default)
    return InferenceRequest(
        inputs=decoded,
        outputs=names,
        id=request_id,
        parameters=parameters,
        binary_outputs=binary_outputs,
    )


def _flag(parameters: Mapping[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = parameters.get(key, default)
    if type(value) is not bool:
        raise InvalidRequest(f"{where}: {key!r} must be true or false, not {value!r}")
    return value


def requested_outputs(
    value: object, outputs: Sequence[TensorMeta], binary_default: bool = False
) -> tuple[tuple[str, ...], frozenset[str]]:
    """The outputs to answer, and those of them to answer as binary data, from the request's
    ``outputs`` (None, or objects with a ``name`` and optional ``parameters``)."""
    known = [m.name for m in outputs]
    every = frozenset(known) if binary_default else frozenset()
    if value is None:
        return tuple(known), every
    if not isinstance(value, list):
        raise InvalidRequest("'outputs' must be an array of objects with a 'name'")
    names: list[str] = []
    binary: set[str] = set()
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidRequest(f"outputs[{i}] must be an object with a string 'name'")
        name = entry["name"]
        if name not in known:
            raise InvalidRequest(f"unknown output {name!r}; the model's outputs are {', '.join(map(repr, known))}")
        if name in names:
            raise InvalidRequest(f"output {name!r} is requested twice")
        parameters = _parameters(entry.get("parameters"), f"output {name!r}")
        if "classification" in parameters:
            raise InvalidRequest(f"output {name!r}: the classification extension is not supported")
        names.append(name)
        if _flag(parameters, "binary_data", f"output {name!r}", binary_default):
            binary.add(name)
    return (tuple(names), frozenset(binary)) if names else (tuple(known), every)
