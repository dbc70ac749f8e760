"""Load one model version for serving, from the very bytes that were hashed.

A single-file artifact is read once, in bounded chunks, into memory while it is hashed; the
onnxruntime session is built from that buffer. A multi-file artifact (a folder with ``model.onnx``
and its external data) is copied file by file into a private temporary folder (mode 0700) while
each file is hashed; the manifest digest is compared and the session is built from the private
copy, which is removed once onnxruntime has loaded it. Nothing is ever hashed and then reopened.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from catalog.artifacts.hashing import Hashed, Progress, hash_stream, manifest_digest
from catalog.domain.digests import is_digest
from catalog.errors import (
    ArtifactError,
    DigestMismatch,
    InferenceFailed,
    InvalidRequest,
    NotOnnx,
    UnsafeArtifact,
    UsageError,
)
from catalog.serving.oip import TensorMeta

__all__ = ["MAIN_FILE", "LoadedModel", "load_verified", "new_run_options"]

MAIN_FILE = "model.onnx"  # the model file inside a multi-file artifact
_ORT_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


@dataclass(frozen=True)
class LoadedModel:
    """An onnxruntime session over verified bytes, with its OIP tensor descriptions."""

    session: ort.InferenceSession
    digest: str
    size: int
    inputs: tuple[TensorMeta, ...]
    outputs: tuple[TensorMeta, ...]

    def run(
        self,
        feeds: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
        run_options: ort.RunOptions | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the model; errors the runtime blames on the input become ``InvalidRequest``.

        Setting ``run_options.terminate`` from another thread stops a run between operators.
        """
        names = list(outputs) if outputs else [m.name for m in self.outputs]
        try:
            results = self.session.run(names, dict(feeds), run_options)
        except ort_state.InvalidArgument as e:
            raise InvalidRequest(f"the model refused the input: {_ort_message(e)}") from e
        except (ort_state.Fail, ort_state.RuntimeException, ort_state.EPFail, ort_state.NotImplemented) as e:
            if run_options is not None and run_options.terminate:
                raise InferenceFailed("the run was stopped: the replica is shutting down") from e
            raise InferenceFailed(f"onnxruntime failed: {_ort_message(e)}") from e
        return dict(zip(names, (np.asarray(r) for r in results), strict=True))


def new_run_options() -> ort.RunOptions:
    """Options for one run: errors are reported by exceptions, so the runtime's own log stays quiet."""
    options = ort.RunOptions()
    options.log_severity_level = 4
    return options


def _ort_message(error: Exception) -> str:
    text = str(error)
    return text.split(" : ", 2)[-1].strip() if text.startswith("[ONNXRuntimeError]") else text


def _tensor_meta(arg: Any, where: str) -> TensorMeta:
    datatype = _ORT_TYPES.get(arg.type)
    if datatype is None:
        raise ArtifactError(
            where, f"tensor {arg.name!r} is {arg.type}; the replica serves tensors of OIP datatypes only"
        )
    dims = tuple(d if isinstance(d, int | str) else None for d in (arg.shape or []))
    # onnxruntime reports both a scalar and a tensor of unknown rank as []; the session checks those.
    return TensorMeta(arg.name, datatype, dims, rank_known=bool(dims))


def _session(model: bytes | str, where: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: warnings go nowhere useful in a server
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    except ort_state.InvalidProtobuf as e:
        raise NotOnnx(where, f"is not an ONNX model onnxruntime can parse ({_ort_message(e)})") from e
    except (ort_state.Fail, ort_state.InvalidGraph, ort_state.NotImplemented, ort_state.InvalidArgument,
            ort_state.NoSuchFile, ort_state.RuntimeException) as e:  # fmt: skip
        raise ArtifactError(where, f"onnxruntime cannot load it: {_ort_message(e)}") from e


def _read_single(path: Path, limit: int | None, progress: Progress | None) -> tuple[Hashed, bytes]:
    sink = io.BytesIO()
    with open(path, "rb", buffering=0) as source:
        hashed = hash_stream(source, name=str(path), sink=sink, limit=limit, progress=progress)
    return hashed, sink.getvalue()


def _copy_folder(root: Path, private: Path, limit: int | None, progress: Progress | None) -> list[tuple[str, Hashed]]:
    """Copy every file under ``root`` into ``private`` while hashing it; refuse links and specials."""
    files: list[tuple[str, Hashed]] = []
    total = 0
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        for name in sorted(dirnames):
            if (here / name).is_symlink():
                raise UnsafeArtifact(str(root), f"{(here / name).relative_to(root)}/ is a symbolic link")
            (private / (here / name).relative_to(root)).mkdir(mode=0o700)
        for name in sorted(filenames):
            source = here / name
            relative = source.relative_to(root).as_posix()
            try:
                fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError as e:
                detail = "is a symbolic link" if source.is_symlink() else f"cannot be read ({e.strerror})"
                raise UnsafeArtifact(str(root), f"{relative} {detail}") from e
            with open(fd, "rb", buffering=0) as src:
                if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                    raise UnsafeArtifact(str(root), f"{relative} is not a regular file")
                target = os.open(private / relative, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with open(target, "wb") as sink:
                    remaining = None if limit is None else limit - total
                    hashed = hash_stream(src, name=str(source), sink=sink, limit=remaining, progress=progress)
            total += hashed.size
            files.append((relative, hashed))
    return files


def load_verified(
    artifact: Path,
    digest: str,
    *,
    limit: int | None = None,
    threads: int = 0,
    progress: Progress | None = None,
) -> LoadedModel:
    """Hash ``artifact`` (a file, or a folder holding ``model.onnx`` and its external data) and
    build an onnxruntime session from the very bytes hashed.

    Raises DigestMismatch (naming both digests) when they are not the bytes ``digest`` names,
    ArtifactError and its kinds when the artifact is missing, unsafe, too large or not loadable.
    ``threads`` sets onnxruntime's intra-op threads (0: its default).
    """
    if not is_digest(digest):
        raise UsageError(f"digest {digest!r} is not sha256:<64 lowercase hex>")
    where = str(artifact)
    try:
        info = artifact.stat()
    except OSError as e:
        raise ArtifactError(where, f"cannot be read: {e.strerror}") from e
    if stat.S_ISREG(info.st_mode):
        hashed, model_bytes = _read_single(artifact, limit, progress)
        if hashed.digest != digest:
            raise DigestMismatch(where, digest, hashed.digest)
        session = _session(model_bytes, where, threads)
        del model_bytes
        size = hashed.size
    elif stat.S_ISDIR(info.st_mode):
        with tempfile.TemporaryDirectory(prefix="modelcat-replica-") as private_name:
            private = Path(private_name)  # mkdtemp makes it 0700: only this user can swap files in it
            files = _copy_folder(artifact, private, limit, progress)
            actual = manifest_digest(files)
            if actual != digest:
                raise DigestMismatch(where, digest, actual)
            main = private / MAIN_FILE
            if not main.is_file():
                raise ArtifactError(where, f"a multi-file artifact must hold {MAIN_FILE}")
            from catalog.artifacts.onnx_facts import check_location, external_locations, load_graph  # onnx: ~0.1 s

            for location in external_locations(load_graph(main)):
                check_location(private, location, main)
            session = _session(str(main), where, threads)
        size = sum(h.size for _, h in files)
    else:
        raise ArtifactError(where, "is neither a file nor a folder")
    inputs = tuple(_tensor_meta(arg, where) for arg in session.get_inputs())
    outputs = tuple(_tensor_meta(arg, where) for arg in session.get_outputs())
    return LoadedModel(session=session, digest=digest, size=size, inputs=inputs, outputs=outputs)
