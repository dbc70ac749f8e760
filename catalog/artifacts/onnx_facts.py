"""ONNX inspection: refuse what is not ONNX by its content, and external data that escapes.

The model is parsed without its external data; every external-data location is checked
(relative, inside the artifact's folder, a plain file: no symlink, no hard link) before any of it
is read, and only then does ``onnx.checker`` run on the path.
"""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from catalog.domain.models import Signature, TensorSpec
from catalog.errors import NotOnnx, UnsafeArtifact

__all__ = ["OnnxFacts", "check_location", "external_locations", "inspect_onnx", "load_graph", "sniff"]

# What a file starts with, for the formats most often mistaken for ONNX.
_MAGIC = (
    (b"PK\x03\x04", "a zip archive (a PyTorch .pt or a Keras file?)"),
    (b"\x89HDF", "an HDF5 file (a Keras .h5?)"),
    (b"\x1f\x8b", "a gzip file"),
    (b"GGUF", "a GGUF file"),
    (b"\x93NUMPY", "a NumPy .npy file"),
)

_DTYPES = {
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


def check_location(base: Path, location: str, model_path: Path) -> Path:
    """The file ``location`` names, if it stays inside ``base`` and is a plain, singly linked file."""
    where = f"external data {location!r} of {model_path.name}"
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
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeArtifact(str(model_path), f"{where} is a symbolic link; copy the file instead")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeArtifact(str(model_path), f"{where} is not a regular file")
    if info.st_nlink > 1:
        raise UnsafeArtifact(str(model_path), f"{where} is a hard link ({info.st_nlink} names); copy the file instead")
    for parent in target.parents:
        if parent == base:
            break
        if parent.is_symlink():
            raise UnsafeArtifact(str(model_path), f"{where} passes through the symbolic link {parent.name}/")
    return target


def _tensor_spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor_type = value.type.tensor_type
    dtype = _DTYPES.get(tensor_type.elem_type)
    if dtype is None:
        raise NotOnnx(value.name, f"tensor {value.name!r} has an unsupported element type {tensor_type.elem_type}")
    dims: list[int | str] = [
        d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") else "?") for d in tensor_type.shape.dim
    ]
    return TensorSpec(name=value.name, dtype=dtype, shape=dims)


def inspect_onnx(path: str | os.PathLike[str]) -> OnnxFacts:
    """Facts about the ONNX model at ``path``; refuses non-ONNX content and unsafe external data.

    The parsed model is dropped before the checker parses the file again, so inline weights are
    held in memory once at a time, not twice.
    """
    path = Path(path)
    model = load_graph(path)
    locations = external_locations(model)
    for location in locations:  # every location is checked before anything is read
        check_location(path.parent, location, path)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [_tensor_spec(v) for v in model.graph.input if v.name not in initializers]
    outputs = [_tensor_spec(v) for v in model.graph.output]
    if not inputs:
        raise NotOnnx(str(path), "has no graph inputs")
    facts = OnnxFacts(
        ir_version=model.ir_version,
        opsets={op.domain or "ai.onnx": op.version for op in model.opset_import},
        producer=model.producer_name,
        producer_version=model.producer_version,
        signature=Signature(inputs=inputs, outputs=outputs),
        external_files=tuple(locations),
    )
    del model
    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, ValueError, OSError) as e:
        raise NotOnnx(str(path), f"fails the ONNX checker: {str(e).splitlines()[0]}") from e
    return facts
