"""A replica's release check: the version's signing bundle verified against the trusted keys before
anything listens. In-process first (each fault's error and reason), then real replica and
``modelcat serve`` processes (slow): a refused one exits 1 with the reason and never listens; a
good one serves and says who signed it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from catalog.errors import SignatureInvalid, SignatureMissing, UntrustedSigner, UsageError, VaultSealed
from catalog.serving.signature import (
    check_release,
    read_trust,
    resolve_keys,
    signature_info,
    signature_text,
    trust_document,
    verify_release,
)
from catalog.signing.bundle import sign_artifact
from catalog.signing.keys import PemKey, key_hint
from catalog.signing.trust import PublicKey, TrustedKeys
from tests.serving.replica_fixtures import FRAUD, ROOT, ReplicaExited, ReplicaProcess, start_replica, stop_replica
from tests.signing.keyfiles import write_key

SUBJECT = f"{FRAUD.model} {FRAUD.version}"


@dataclass(frozen=True)
class Signed:
    """The demo's fraud-scorer 1.3.0 copied into ``folder``, its bundle by ``release``, and keys."""

    folder: Path
    artifact: Path
    bundle: Path
    digest: str

    def public(self, name: str) -> PublicKey:
        pem = (self.folder / "keys" / f"{name}.pub.pem").read_bytes()
        return PublicKey(name, 1, pem, key_hint(pem))

    def trust(self, *names: str, required: bool = True) -> TrustedKeys:
        return TrustedKeys(required, tuple(self.public(name) for name in names))

    def trust_file(self, *names: str, required: bool = True) -> Path:
        path = self.folder / f"trust-{'-'.join(names) or 'none'}-{required}.json"
        path.write_bytes(trust_document(self.trust(*names, required=required)))
        return path

    def write_bundle(self, data: bytes, name: str) -> tuple[Path, str]:
        path = self.folder / name
        path.write_bytes(data)
        return path, "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    for name in ("release", "intruder"):
        write_key(tmp_path / "keys", name)
    artifact = tmp_path / "model.onnx"
    shutil.copyfile(FRAUD.artifact, artifact)
    data = sign_artifact(artifact, PemKey(tmp_path / "keys" / "release.pem"))
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(data)
    return Signed(tmp_path, artifact, bundle, "sha256:" + hashlib.sha256(data).hexdigest())


def tampered(data: bytes) -> bytes:
    """The bundle with its statement's first file digest changed (its signature then no longer holds)."""
    doc = json.loads(data)
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    digest = statement["subject"][0]["digest"]["sha256"]
    statement["subject"][0]["digest"]["sha256"] = ("0" if digest[0] != "0" else "1") + digest[1:]
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(doc).encode()


# -- in-process ------------------------------------------------------------------------------------


def test_a_good_bundle_by_a_trusted_key_verifies_and_names_the_key(signed: Signed) -> None:
    verified = verify_release(signed.artifact, signed.bundle, signed.digest, signed.trust("release"), SUBJECT)
    assert verified is not None
    assert (verified.key, verified.key_version, verified.bundle_digest) == ("release", 1, signed.digest)
    assert signature_text(signature_info(verified)) == "signed by release v1, verified"


def test_a_bundle_other_than_the_catalogs_is_refused_naming_both_digests(signed: Signed) -> None:
    other = "sha256:" + "0" * 64
    with pytest.raises(SignatureInvalid) as caught:
        verify_release(signed.artifact, signed.bundle, other, signed.trust("release"), SUBJECT)
    assert other in str(caught.value) and signed.digest in str(caught.value)


def test_a_tampered_bundle_is_refused(signed: Signed) -> None:
    path, digest = signed.write_bundle(tampered(signed.bundle.read_bytes()), "tampered.json")
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_release(signed.artifact, path, digest, signed.trust("release"), SUBJECT)


def test_a_bundle_over_other_bytes_is_refused(signed: Signed) -> None:
    other = signed.folder / "other.onnx"
    other.write_bytes(signed.artifact.read_bytes() + b"\0")
    with pytest.raises(SignatureInvalid, match="sha256"):
        verify_release(other, signed.bundle, signed.digest, signed.trust("release"), SUBJECT)


def test_a_signature_by_an_untrusted_key_is_refused(signed: Signed) -> None:
    with pytest.raises(UntrustedSigner, match="intruder v1"):
        verify_release(signed.artifact, signed.bundle, signed.digest, signed.trust("intruder"), SUBJECT)


def test_a_bundle_is_checked_even_where_signatures_are_not_required(signed: Signed) -> None:
    path, digest = signed.write_bundle(tampered(signed.bundle.read_bytes()), "tampered.json")
    with pytest.raises(SignatureInvalid):
        verify_release(signed.artifact, path, digest, signed.trust("release", required=False), SUBJECT)


def test_a_missing_bundle_is_refused_only_where_signatures_are_required(signed: Signed) -> None:
    with pytest.raises(SignatureMissing, match="requires signatures"):
        verify_release(signed.artifact, None, None, signed.trust("release"), SUBJECT)
    assert verify_release(signed.artifact, None, None, signed.trust("release", required=False), SUBJECT) is None
    assert signature_text(None) == "unsigned"


def test_the_trust_file_reads_back_what_was_written(signed: Signed) -> None:
    trust = read_trust(signed.trust_file("release", "intruder"))
    assert trust == signed.trust("release", "intruder")


def test_a_bundle_without_a_trust_file_is_a_usage_error(signed: Signed) -> None:
    with pytest.raises(UsageError, match="--bundle needs --trust"):
        check_release(signed.artifact, signed.bundle, signed.digest, None, FRAUD.model, FRAUD.version)
    broken = signed.folder / "broken.json"
    broken.write_text("{}")
    with pytest.raises(UsageError, match="not a modelcat trust file"):
        read_trust(broken)


# -- processes -------------------------------------------------------------------------------------


def release_flags(trust: Path, bundle: Path | None = None, digest: str | None = None) -> list[str]:
    return ["--trust", str(trust)] + (["--bundle", str(bundle), "--bundle-digest", str(digest)] if bundle else [])


def refused(signed: Signed, flags: list[str]) -> ReplicaExited:
    with (
        pytest.raises(ReplicaExited) as caught,
        start_replica(FRAUD.model, FRAUD.version, signed.artifact, FRAUD.digest, extra_args=flags, timeout=120),
    ):
        pass
    assert caught.value.returncode == 1, caught.value.stderr
    assert " listening on " not in caught.value.stdout
    return caught.value


@pytest.mark.slow
def test_a_replica_with_a_tampered_bundle_exits_with_the_reason_and_never_listens(signed: Signed) -> None:
    path, digest = signed.write_bundle(tampered(signed.bundle.read_bytes()), "tampered.json")
    exited = refused(signed, release_flags(signed.trust_file("release"), path, digest))
    assert "does not verify" in exited.stderr


@pytest.mark.slow
def test_a_replica_signed_by_an_untrusted_key_exits_with_the_reason(signed: Signed) -> None:
    exited = refused(signed, release_flags(signed.trust_file("intruder"), signed.bundle, signed.digest))
    assert "none of the trusted keys" in exited.stderr and "intruder v1" in exited.stderr


@pytest.mark.slow
def test_a_replica_missing_a_required_bundle_exits_with_the_reason(signed: Signed) -> None:
    exited = refused(signed, release_flags(signed.trust_file("release")))
    assert "requires signatures" in exited.stderr and SUBJECT in exited.stderr


@pytest.mark.slow
def test_a_signed_replica_serves_and_says_who_signed_it(signed: Signed) -> None:
    flags = release_flags(signed.trust_file("release"), signed.bundle, signed.digest)
    with start_replica(FRAUD.model, FRAUD.version, signed.artifact, FRAUD.digest, extra_args=flags) as running:
        meta = httpx.get(f"{running.url}/v2/models/{FRAUD.model}/versions/{FRAUD.version}", trust_env=False).json()
        line = running.process.lines[0]
    assert meta["parameters"]["model_signature"] == {
        "key": "release",
        "key_version": 1,
        "bundle_digest": signed.digest,
        "verified": True,
    }
    assert "(signed by release v1, verified) listening on" in line


@pytest.mark.slow
def test_an_unsigned_replica_says_so(signed: Signed) -> None:
    flags = release_flags(signed.trust_file("release", required=False))
    with start_replica(FRAUD.model, FRAUD.version, signed.artifact, FRAUD.digest, extra_args=flags) as running:
        meta = httpx.get(f"{running.url}/v2/models/{FRAUD.model}", trust_env=False).json()
        line = running.process.lines[0]
    assert "model_signature" not in meta["parameters"]
    assert "(unsigned) listening on" in line


@pytest.mark.slow
def test_serve_takes_its_release_check_from_the_environment_and_refuses_a_bad_bundle(signed: Signed) -> None:
    path, digest = signed.write_bundle(tampered(signed.bundle.read_bytes()), "tampered.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELCAT_", "SM_", "SAGEMAKER_"))}
    env |= {
        "MODELCAT_MODEL": FRAUD.model,
        "MODELCAT_VERSION": FRAUD.version,
        "MODELCAT_DIGEST": FRAUD.digest,
        "MODELCAT_ARTIFACT": str(signed.artifact),
        "MODELCAT_TRUST": str(signed.trust_file("release")),
        "MODELCAT_BUNDLE": str(path),
        "MODELCAT_BUNDLE_DIGEST": digest,
        "SAGEMAKER_BIND_TO_PORT": "0",
    }
    process = ReplicaProcess([sys.executable, "-m", "catalog.cli.serve_command"], cwd=ROOT, env=env)
    try:
        assert process.wait(120) == 1
    finally:
        stop_replica(process)
        process._reader.join(5)
    assert "does not verify" in process.stderr_text()
    assert " listening on " not in process.stdout_text()


def test_a_vault_key_is_trusted_from_its_min_version_and_an_older_version_is_refused(
    signed: Signed, vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.signing.keys import open_key

    for name, value in vault.env().items():
        monkeypatch.setenv(name, value)
    vault.create_key("release")
    ref = "vault://transit/keys/release"
    by_version = {}
    for version in (1, 2):
        if version == 2:
            vault.rotate("release")
        path, digest = signed.write_bundle(
            sign_artifact(signed.artifact, open_key(ref, signed.folder)), f"v{version}.json"
        )
        by_version[version] = (path, digest)
    trust = resolve_keys([{"name": "transit", "vault": ref, "min_version": 2}], True)
    assert [(k.name, k.version) for k in trust.keys] == [("transit", 2)]
    assert [(k.name, k.version) for k in trust.revoked] == [("transit", 1)]
    verified = verify_release(signed.artifact, *by_version[2], trust, SUBJECT)
    assert verified is not None and signature_text(signature_info(verified)) == "signed by transit v2, verified"
    with pytest.raises(UntrustedSigner, match="signed by transit v1, a revoked version"):
        verify_release(signed.artifact, *by_version[1], trust, SUBJECT)
    assert read_trust(signed.write_bundle(trust_document(trust), "trust.json")[0]) == trust


def test_a_sealed_vault_fails_the_key_resolution_with_the_reason(vault, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in vault.env().items():
        monkeypatch.setenv(name, value)
    vault.create_key("release")
    vault.seal()
    with pytest.raises(VaultSealed) as caught:
        resolve_keys([{"name": "transit", "vault": "vault://transit/keys/release", "min_version": 1}], True)
    assert caught.value.exit_code == 2 and vault.token not in str(caught.value)
