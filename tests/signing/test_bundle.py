"""OMS v1.0 bundles over an artifact's files: made with our key, verified against candidate keys."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.errors import SignatureInvalid, UntrustedSigner
from catalog.signing.bundle import bundle_hint, key_hint, sign_artifact, verify_artifact
from catalog.signing.keys import PemKey
from catalog.signing.trust import PublicKey
from tests.signing.keyfiles import write_key


def public(path: Path, name: str = "release", version: int = 1) -> PublicKey:
    pem = path.with_name(path.name.replace(".pem", ".pub.pem")).read_bytes()
    return PublicKey(name, version, pem, key_hint(pem))


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return write_key(tmp_path / "keys", "release")


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "model-file"
    path.parent.mkdir()
    path.write_bytes(b"onnx bytes " * 100)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "model-folder"
    (path / "data").mkdir(parents=True)
    (path / "model.onnx").write_bytes(b"graph")
    (path / "data" / "weights.bin").write_bytes(b"\0" * 4096)
    return path


def statement(bundle: bytes) -> dict:
    return json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))


def test_a_bundle_verifies_and_names_the_key_that_signed(artifact: Path, key_path: Path, tmp_path: Path) -> None:
    other = public(write_key(tmp_path / "keys", "other"), "other")
    bundle = sign_artifact(artifact, PemKey(key_path))
    assert verify_artifact(artifact, bundle, [other, public(key_path)]) == public(key_path)


def test_the_bundle_is_an_oms_v1_statement_in_a_sigstore_bundle(artifact: Path, key_path: Path) -> None:
    bundle = sign_artifact(artifact, PemKey(key_path))
    parsed = json.loads(bundle)
    assert parsed["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert parsed["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert parsed["verificationMaterial"]["publicKey"]["hint"] == public(key_path).hint == bundle_hint(bundle)
    claim = statement(bundle)
    assert claim["_type"] == "https://in-toto.io/Statement/v1"
    assert claim["predicateType"] == "https://model_signing/signature/v1.0"
    assert claim["predicate"]["serialization"]["method"] == "files"


def test_every_file_of_a_folder_artifact_is_signed(folder: Path, key_path: Path) -> None:
    bundle = sign_artifact(folder, PemKey(key_path))
    names = sorted(r["name"] for r in statement(bundle)["predicate"]["resources"])
    assert names == ["data/weights.bin", "model.onnx"]
    verify_artifact(folder, bundle, [public(key_path)])
    (folder / "data" / "weights.bin").write_bytes(b"\1" * 4096)
    with pytest.raises(SignatureInvalid, match="data/weights.bin: sha256"):
        verify_artifact(folder, bundle, [public(key_path)])


def test_a_file_added_to_a_signed_folder_is_refused(folder: Path, key_path: Path) -> None:
    bundle = sign_artifact(folder, PemKey(key_path))
    (folder / "extra.bin").write_bytes(b"x")
    with pytest.raises(SignatureInvalid, match="extra.bin: not signed"):
        verify_artifact(folder, bundle, [public(key_path)])


def test_a_bundle_for_other_bytes_is_refused(artifact: Path, key_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_bytes(b"other bytes")
    bundle = sign_artifact(other, PemKey(key_path))
    with pytest.raises(SignatureInvalid, match="for other bytes"):
        verify_artifact(artifact, bundle, [public(key_path)], where="fraud-scorer 1.4.0 bundle")


def test_a_tampered_bundle_is_refused(artifact: Path, key_path: Path, tmp_path: Path) -> None:
    bundle = json.loads(sign_artifact(artifact, PemKey(key_path)))
    claim = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    claim["subject"][0]["name"] = "renamed"  # any change to the signed statement
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(claim).encode()).decode()
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_artifact(artifact, json.dumps(bundle).encode(), [public(key_path)])


def test_a_bundle_resigned_for_other_bytes_by_another_key_is_untrusted(
    artifact: Path, key_path: Path, tmp_path: Path
) -> None:
    intruder = write_key(tmp_path / "keys", "intruder")
    bundle = sign_artifact(artifact, PemKey(intruder))
    with pytest.raises(UntrustedSigner, match=r"trusted: release v1"):
        verify_artifact(artifact, bundle, [public(key_path)])


@pytest.mark.parametrize("garbage", [b"", b"{}", b"not json", b'{"mediaType": "x"}'])
def test_garbage_is_no_bundle(artifact: Path, key_path: Path, garbage: bytes) -> None:
    with pytest.raises(SignatureInvalid, match="my bundle"):
        verify_artifact(artifact, garbage, [public(key_path)], where="my bundle")


def test_a_p384_key_signs_and_verifies(artifact: Path, tmp_path: Path) -> None:
    path = write_key(tmp_path / "keys", "p384", ec.SECP384R1())
    assert verify_artifact(artifact, sign_artifact(artifact, PemKey(path)), [public(path, "p384")]).name == "p384"


def test_the_hint_does_not_depend_on_how_the_pem_is_spelled(key_path: Path) -> None:
    pem = public(key_path).pem
    assert key_hint(pem.replace(b"\n", b"\r\n")) == key_hint(pem)
