"""`modelcat fetch` with a release check, as the kubernetes init container runs it: the bundle fetched
by digest, the trusted keys resolved into the replica's trust file, the signature verified; a bad,
untrusted or missing required signature exits 1 with the reason."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog.serving.signature import check_release
from catalog.signing.bundle import sign_artifact
from catalog.signing.keys import PemKey
from tests.helpers import ROOT
from tests.signing.keyfiles import write_key

ARTIFACT = ROOT / "artifacts/sha256/fb/fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0"
DIGEST, SIZE = f"sha256:{ARTIFACT.name}", ARTIFACT.stat().st_size


@dataclass(frozen=True)
class Pod:
    """A mounted store (``store``: the artifact's bundle by ``release``) and the pod's /models."""

    store: Path
    bundle: Path
    bundle_digest: str
    keys: Path
    models: Path

    def trusted(self, name: str) -> str:
        return json.dumps([{"name": name, "pem": (self.keys / f"{name}.pub.pem").read_text(), "min_version": 1}])

    def fetch(self, cli, trusted: str = "release", bundle: Path | None = None, *extra: str):  # type: ignore[no-untyped-def]
        signed = bundle or self.bundle
        digest = "sha256:" + hashlib.sha256(signed.read_bytes()).hexdigest()
        args = ["fetch", ARTIFACT, "--digest", DIGEST, "--size", SIZE, "--out", self.models / "artifact"]
        args += ["--bundle", signed, "--bundle-digest", digest, "--bundle-out", self.models / "bundle.json"]
        return cli(*args, "--trusted-keys", self.trusted(trusted), "--trust-out", self.models / "trust.json", *extra)


@pytest.fixture
def pod(tmp_path: Path) -> Pod:
    keys = tmp_path / "keys"
    for name in ("release", "intruder"):
        write_key(keys, name)
    data = sign_artifact(ARTIFACT, PemKey(keys / "release.pem"))
    bundle = tmp_path / "store" / "bundle.json"
    bundle.parent.mkdir()
    bundle.write_bytes(data)
    return Pod(tmp_path / "store", bundle, "sha256:" + hashlib.sha256(data).hexdigest(), keys, tmp_path / "models")


def test_a_signed_fetch_writes_the_bundle_and_trust_file_the_replica_verifies(cli, pod: Pod) -> None:
    result = pod.fetch(cli, "release", None, "--require-signatures")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("signed by release v1, verified")
    assert (pod.models / "bundle.json").read_bytes() == pod.bundle.read_bytes()
    signed = check_release(
        pod.models / "artifact", pod.models / "bundle.json", pod.bundle_digest, pod.models / "trust.json",
        "fraud-scorer", "1.3.0",
    )  # fmt: skip
    assert signed is not None and (signed.key, signed.key_version) == ("release", 1)


def test_a_fetch_signed_by_an_untrusted_key_exits_1_with_the_reason(cli, pod: Pod) -> None:
    result = pod.fetch(cli, "intruder")
    assert result.exit_code == 1
    assert "none of the trusted keys" in result.output and "intruder v1" in result.output


def test_a_fetch_with_a_tampered_bundle_exits_1_with_the_reason(cli, pod: Pod) -> None:
    doc = json.loads(pod.bundle.read_bytes())
    signature = doc["dsseEnvelope"]["signatures"][0]
    signature["sig"] = signature["sig"][:-8] + ("A" * 8 if not signature["sig"].endswith("A" * 8) else "B" * 8)
    tampered = pod.store / "tampered.json"
    tampered.write_text(json.dumps(doc))
    result = pod.fetch(cli, "release", tampered)
    assert result.exit_code == 1
    assert "does not verify" in result.output


def test_a_fetch_without_the_required_bundle_exits_1_with_the_reason(cli, pod: Pod) -> None:
    args = ["fetch", ARTIFACT, "--digest", DIGEST, "--size", SIZE, "--out", pod.models / "artifact"]
    trust = ["--trusted-keys", pod.trusted("release"), "--trust-out", pod.models / "trust.json"]
    result = cli(*args, *trust, "--require-signatures")
    assert result.exit_code == 1
    assert "requires signatures and the version has no bundle" in result.output
