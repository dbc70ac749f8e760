"""ONNX inspection: refuse what is not ONNX by its content, and external data that escapes.

The model is parsed without its external data; every external-data location is checked
(relative, inside the artifact's folder, a plain file: no symlink, no hard link, not the model
itself) before any of it is read, and only then does ``onnx.checker`` run on the path. Inputs and
outputs the catalog cannot describe (sequences, maps, optional values, element types without a
dtype) are refused naming what they are.
"""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper
from pydantic import ValidationError

from catalog.domain.models import DType, Signature, TensorSpec
from catalog.errors import NotOnnx, UnsafeArtifact, UnsupportedModel

__all__ = [
    "MAIN_FILE",
    "OnnxFacts",
    "check_location",
    "external_files",
    "external_locations",
    "inspect_onnx",
    "load_graph",
    "sniff",
]

MAIN_FILE = "model.onnx"  # the model file's name inside a stored multi-file artifact

# What a file starts with, for the formats most often mistaken for ONNX.
_MAGIC = (
    (b"PK\x03\x04", "a zip archive (a PyTorch .pt or a Keras file?)"),
    (b"\x89HDF", "an HDF5 file (a Keras .h5?)"),
    (b"\x1f\x8b", "a gzip file"),
    (b"GGUF", "a GGUF file"),
    (b"\x93NUMPY", "a NumPy .npy file"),
)

_DTYPES: dict[int, DType] = {
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.BFLOAT16: "bfloat16",
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.INT16: "int16",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.UINT16: "uint16",
    onnx.TensorProto.UINT32: "uint32",
    onnx.TensorProto.UINT64: "uint64",
    onnx.TensorProto.BOOL: "bool",
    onnx.TensorProto.STRING: "string",
}
_ZIPMAP_FIX = (
    "skl2onnx writes this for a classifier's probabilities (a ZipMap); convert with "
    "options={id(clf): {'zipmap': False}} to have them as one float tensor"
)


@dataclass(frozen=True)
class OnnxFacts:
    ir_version: int
    opsets: dict[str, int]
    producer: str
    producer_version: str
    signature: Signature
    external_files: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        body = asdict(self)
        body["signature"] = self.signature.model_dump(mode="json")
        return body


def sniff(head: bytes) -> str | None:
    """Name the format of a file that is certainly not ONNX, from its first bytes."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (never load it: unpickling runs code)"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    return None


def load_graph(path: Path) -> onnx.ModelProto:
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise NotOnnx(str(path), "is empty")
    kind = sniff(head)
    if kind:
        raise NotOnnx(str(path), f"is {kind}, not an ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as e:
        raise NotOnnx(str(path), f"is not a valid ONNX model (truncated or corrupt: {e})") from e
    if model.ir_version <= 0 or not model.opset_import or not model.graph.output:
        raise NotOnnx(str(path), "does not hold an ONNX model (no IR version, opset or graph outputs)")
    return model


def external_locations(model: onnx.ModelProto) -> list[str]:
    """Every external-data location the model names, in order of appearance, without duplicates."""
    seen: dict[str, None] = {}
    for tensor in external_data_helper._get_all_tensors(model):
        if external_data_helper.uses_external_data(tensor):
            info = external_data_helper.ExternalDataInfo(tensor)
            seen.setdefault(info.location, None)
    return list(seen)


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut short when it is long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} characters)"


def check_location(base: Path, location: str, model_path: Path) -> Path:
    """The file ``location`` names, if it stays inside ``base`` and is a plain, singly linked file,
    neither the model file itself nor named as a stored artifact names its model (``model.onnx``)."""
    where = f"external data {_shown(location)} of {model_path.name}"
    if "\x00" in location:
        raise UnsafeArtifact(str(model_path), f"{where} contains a NUL byte")
    if not location or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
        raise UnsafeArtifact(str(model_path), f"{where} is an absolute path; it must be relative to the model")
    parts = PurePosixPath(location.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArtifact(str(model_path), f"{where} climbs out of the model's folder ('..')")
    target = base.joinpath(*parts)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        raise UnsafeArtifact(str(model_path), f"{where} does not exist next to the model") from None
    except OSError as e:
        raise UnsafeArtifact(str(model_path), f"{where} cannot be read ({e.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeArtifact(str(model_path), f"{where} is a symbolic link; copy the file instead")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeArtifact(str(model_path), f"{where} is not a regular file")
    if os.path.samestat(info, os.stat(model_path)):
        raise UnsafeArtifact(str(model_path), f"{where} is the model file itself; save the weights to another file")
    if parts == (MAIN_FILE,):
        raise UnsafeArtifact(
            str(model_path), f"{where} has the name the stored model file takes ({MAIN_FILE}); rename the data file"
        )
    if info.st_nlink > 1:
        raise UnsafeArtifact(str(model_path), f"{where} is a hard link ({info.st_nlink} names); copy the file instead")
    for parent in target.parents:
        if parent == base:
            break
        if parent.is_symlink():
            raise UnsafeArtifact(str(model_path), f"{where} passes through the symbolic link {parent.name}/")
    return target


def external_files(model: onnx.ModelProto, path: Path) -> list[tuple[str, Path]]:
    """Every external-data file of the model at ``path``, checked, once each: its location as a
    stored artifact names it (``./w.bin`` is ``w.bin``) and the file."""
    files: dict[str, Path] = {}
    for location in external_locations(model):
        target = check_location(path.parent, location, path)
        files.setdefault(target.relative_to(path.parent).as_posix(), target)
    return list(files.items())


def _element(number: int) -> str:
    """ONNX's name of an element type (FLOAT8E4M3FN), or its number if this onnx does not know it."""
    try:
        return onnx.TensorProto.DataType.Name(number)
    except ValueError:
        return str(number)


def _notation(value_type: onnx.TypeProto) -> str:
    """A value type as ONNX and onnxruntime write it: ``seq(map(int64,tensor(float)))``."""
    kind = value_type.WhichOneof("value")
    if kind == "tensor_type":
        return f"tensor({_element(value_type.tensor_type.elem_type).lower()})"
    if kind == "sparse_tensor_type":
        return f"sparse_tensor({_element(value_type.sparse_tensor_type.elem_type).lower()})"
    if kind == "sequence_type":
        return f"seq({_notation(value_type.sequence_type.elem_type)})"
    if kind == "map_type":
        key = _element(value_type.map_type.key_type).lower()
        return f"map({key},{_notation(value_type.map_type.value_type)})"
    if kind == "optional_type":
        return f"optional({_notation(value_type.optional_type.elem_type)})"
    return "no type"


def _described(value_type: onnx.TypeProto, plural: bool = False, article: bool = True) -> str:
    """A value type in words: ``a sequence of maps from int64 to float32 tensors``."""
    kind = value_type.WhichOneof("value")
    if kind == "optional_type":
        inner = _described(value_type.optional_type.elem_type, plural, article=False)
        return f"{'an ' if article and not plural else ''}optional {inner}"
    if kind in ("tensor_type", "sparse_tensor_type"):
        number = getattr(value_type, kind).elem_type
        noun, rest = f"{_DTYPES.get(number) or _element(number)} {'sparse ' * (kind != 'tensor_type')}tensor", ""
    elif kind == "sequence_type":
        noun, rest = "sequence", f" of {_described(value_type.sequence_type.elem_type, plural=True)}"
    elif kind == "map_type":
        key = _DTYPES.get(value_type.map_type.key_type) or _element(value_type.map_type.key_type)
        noun, rest = "map", f" from {key} to {_described(value_type.map_type.value_type, plural=True)}"
    else:
        noun, rest = "value", " with no type"
    if plural:
        return f"{noun}s{rest}"
    return f"{('an ' if noun[0] in 'aeio' else 'a ') if article else ''}{noun}{rest}"


def _tensor_spec(value: onnx.ValueInfoProto, side: str, path: Path) -> TensorSpec:
    what = f"{side} {_shown(value.name)}"
    if value.type.WhichOneof("value") != "tensor_type":
        notation = _notation(value.type)
        fix = _ZIPMAP_FIX if notation.startswith("seq(map(") else "the catalog and its replicas take tensors only"
        raise UnsupportedModel(str(path), f"{what} is {_described(value.type)} ({notation}), not a tensor; {fix}")
    tensor_type = value.type.tensor_type
    dtype = _DTYPES.get(tensor_type.elem_type)
    if dtype is None:
        detail = (
            "has no element type"
            if tensor_type.elem_type == 0
            else f"has element type {_element(tensor_type.elem_type)}"
        )
        raise UnsupportedModel(
            str(path), f"{what} {detail}, which the catalog does not support (it takes {', '.join(_DTYPES.values())})"
        )
    dims: list[int | str] = [
        d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else "?")
        for d in tensor_type.shape.dim
    ]  # a negative size is "any", as onnxruntime reads it
    try:
        return TensorSpec(name=value.name, dtype=dtype, shape=dims)
    except ValidationError as e:
        first = e.errors()[0]
        loc = first["loc"]
        field_name = f"dimension {loc[1]} {_shown(str(first['input']))}" if loc[0] == "shape" else str(loc[0])
        message = first["msg"].removeprefix("Value error, ")
        raise UnsupportedModel(str(path), f"{what}: {field_name}: {message}") from None


def inspect_onnx(path: str | os.PathLike[str]) -> OnnxFacts:
    """Facts about the ONNX model at ``path``; refuses non-ONNX content and unsafe external data.

    The parsed model is dropped before the checker parses the file again, so inline weights are
    held in memory once at a time, not twice.
    """
    path = Path(path)
    model = load_graph(path)
    external = external_files(model, path)  # every location is checked before anything is read
    initializers = {init.name for init in model.graph.initializer}
    inputs = [_tensor_spec(v, "input", path) for v in model.graph.input if v.name not in initializers]
    outputs = [_tensor_spec(v, "output", path) for v in model.graph.output]
    if not inputs:
        raise NotOnnx(str(path), "has no graph inputs")
    facts = OnnxFacts(
        ir_version=model.ir_version,
        opsets={op.domain or "ai.onnx": op.version for op in model.opset_import},
        producer=model.producer_name,
        producer_version=model.producer_version,
        signature=Signature(inputs=inputs, outputs=outputs),
        external_files=tuple(location for location, _ in external),
    )
    del model
    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, ValueError, OSError) as e:
        raise NotOnnx(str(path), f"fails the ONNX checker: {str(e).splitlines()[0]}") from e
    return facts
