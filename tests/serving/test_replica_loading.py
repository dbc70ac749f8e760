"""Verified loading: the replica serves the bytes the catalog names, or nothing at all."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from catalog.artifacts.hashing import hash_file, manifest_digest
from catalog.cli.replica_command import replica
from catalog.errors import ArtifactError, DigestMismatch, NotOnnx, UnsafeArtifact, UsageError
from catalog.serving import replica_model
from catalog.serving.replica_model import load_verified
from tests.onnx_models import dense_model, save_with_external_data
from tests.serving.replica_fixtures import FRAUD, ReplicaExited, free_port, start_replica, write_model

X = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)


def folder_digest(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return manifest_digest([(p.relative_to(folder).as_posix(), hash_file(str(p))) for p in files])


def test_single_file_loads_from_the_hashed_bytes() -> None:
    loaded = load_verified(FRAUD.artifact, FRAUD.digest)
    assert loaded.digest == FRAUD.digest and loaded.size == FRAUD.artifact.stat().st_size
    assert [(m.name, m.datatype, m.shape) for m in loaded.inputs] == [("features", "FP32", [-1, 16])]
    expected = ort.InferenceSession(str(FRAUD.artifact)).run(None, {"features": X})[0]
    assert np.allclose(loaded.run({"features": X})["fraud_probability"], expected)


def test_single_file_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session is built from the buffer filled while hashing: the path is opened exactly once."""
    opened: list[str] = []
    real_open = open

    def counting_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(replica_model, "open", counting_open, raising=False)
    sessions: list[object] = []
    real_session = replica_model.ort.InferenceSession

    def recording_session(model, *args, **kwargs):  # type: ignore[no-untyped-def]
        sessions.append(model)
        return real_session(model, *args, **kwargs)

    monkeypatch.setattr(replica_model.ort, "InferenceSession", recording_session)
    load_verified(FRAUD.artifact, FRAUD.digest)
    assert opened == [str(FRAUD.artifact)]
    assert [type(s) for s in sessions] == [bytes] and sessions[0] == FRAUD.artifact.read_bytes()


def test_single_file_mismatch_names_both_digests(tmp_path: Path) -> None:
    tampered = tmp_path / "model.onnx"
    tampered.write_bytes(FRAUD.artifact.read_bytes() + b"\0")
    with pytest.raises(DigestMismatch) as caught:
        load_verified(tampered, FRAUD.digest)
    assert caught.value.expected == FRAUD.digest
    assert caught.value.actual == hash_file(str(tampered)).digest
    assert FRAUD.digest in str(caught.value) and caught.value.actual in str(caught.value)


def test_multi_file_artifact_loads_from_a_private_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "artifact"
    save_with_external_data(dense_model(seed=11), folder)
    digest = folder_digest(folder)
    seen: list[tuple[Path, int, list[str]]] = []
    real_session = replica_model._session

    def spy(model, where, threads):  # type: ignore[no-untyped-def]
        private = Path(model).parent
        seen.append((private, stat.S_IMODE(private.stat().st_mode), sorted(os.listdir(private))))
        return real_session(model, where, threads)

    monkeypatch.setattr(replica_model, "_session", spy)
    loaded = load_verified(folder, digest)
    [(private, mode, names)] = seen
    assert mode == 0o700 and names == ["model.onnx", "weights.bin"]
    assert private != folder and not private.exists()  # removed once onnxruntime has loaded it
    expected = ort.InferenceSession(str(folder / "model.onnx")).run(None, {"features": X})[0]
    assert np.allclose(loaded.run({"features": X})["fraud_probability"], expected)
    assert loaded.size == sum(p.stat().st_size for p in folder.iterdir())


def test_multi_file_mismatch_when_external_weights_change(tmp_path: Path) -> None:
    folder = tmp_path / "artifact"
    save_with_external_data(dense_model(seed=12), folder)
    digest = folder_digest(folder)
    weights = folder / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[10] ^= 0xFF
    weights.write_bytes(bytes(data))
    leftovers = set(Path(tempfile.gettempdir()).glob("modelcat-replica-*"))
    with pytest.raises(DigestMismatch) as caught:
        load_verified(folder, digest)
    assert caught.value.expected == digest and caught.value.actual == folder_digest(folder)
    assert set(Path(tempfile.gettempdir()).glob("modelcat-replica-*")) == leftovers  # private copy removed


def test_multi_file_symlink_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "artifact"
    save_with_external_data(dense_model(seed=13), folder)
    outside = tmp_path / "weights-elsewhere.bin"
    (folder / "weights.bin").rename(outside)
    (folder / "weights.bin").symlink_to(outside)
    with pytest.raises(UnsafeArtifact, match="symbolic link"):
        load_verified(folder, "sha256:" + "0" * 64)


def test_multi_file_escaping_external_data_is_refused(tmp_path: Path) -> None:
    from tests.onnx_models import point_external_data_at

    folder = tmp_path / "artifact"
    main = save_with_external_data(dense_model(seed=14), folder)
    point_external_data_at(main, "../weights.bin")
    shutil.copyfile(folder / "weights.bin", tmp_path / "weights.bin")
    with pytest.raises(UnsafeArtifact, match="climbs out"):
        load_verified(folder, folder_digest(folder))


def test_not_onnx_and_missing_artifacts_are_artifact_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not a protobuf model" * 10)
    with pytest.raises(NotOnnx):
        load_verified(junk, hash_file(str(junk)).digest)
    with pytest.raises(ArtifactError, match="cannot be read"):
        load_verified(tmp_path / "absent.onnx", FRAUD.digest)
    with pytest.raises(UsageError, match="sha256:<64 lowercase hex>"):
        load_verified(FRAUD.artifact, "md5:abc")


def test_non_tensor_models_are_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    seq = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)
    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x"], ["s"])],
        "seq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [seq],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path, digest = write_model(model, tmp_path / "seq.onnx")
    with pytest.raises(ArtifactError, match="'s' is seq"):
        load_verified(path, digest)


# --- the command: nothing listens until the bytes are verified --------------------------------


def _port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_replica_on_a_tampered_artifact_exits_without_listening(tmp_path: Path) -> None:
    tampered = tmp_path / "fraud-tampered.onnx"
    tampered.write_bytes(FRAUD.artifact.read_bytes() + b"\x01")
    actual = hash_file(str(tampered)).digest
    port = free_port()
    with (
        pytest.raises(ReplicaExited) as caught,
        start_replica(FRAUD.model, FRAUD.version, tampered, FRAUD.digest, port=port),
    ):
        pytest.fail("a replica on a tampered artifact became ready")
    assert caught.value.returncode == 1
    assert FRAUD.digest in caught.value.stderr and actual in caught.value.stderr
    assert "digest mismatch" in caught.value.stderr
    assert "listening" not in caught.value.stdout
    assert _port_is_closed(port)


def test_replica_command_usage_errors() -> None:
    runner = CliRunner()
    base = ["--model", FRAUD.model, "--version", FRAUD.version, "--port", "0"]
    result = runner.invoke(replica, [*base, "--artifact", str(FRAUD.artifact), "--digest", "sha256:abc"])
    assert result.exit_code == 2 and "sha256:<64 lowercase hex>" in result.output
    result = runner.invoke(replica, [*base, "--artifact", "/nonexistent/model.onnx", "--digest", FRAUD.digest])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(replica, [*base, "--artifact", str(FRAUD.artifact), "--digest", "sha256:" + "0" * 64,
                                     "--format", "json"])  # fmt: skip
    assert result.exit_code == 1 and '"error"' in result.output and "sha256:" + "0" * 64 in result.output


def test_port_in_use_is_an_environment_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            replica,
            ["--model", FRAUD.model, "--version", FRAUD.version, "--artifact", str(FRAUD.artifact),
             "--digest", FRAUD.digest, "--port", str(port)],
        )  # fmt: skip
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.output
