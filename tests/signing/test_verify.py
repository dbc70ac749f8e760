"""verify_version: a version's bundle, fetched by digest, judged against an environment's trust policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalog.errors import SignatureInvalid, SignatureMissing, UntrustedSigner, UsageError
from catalog.signing.verify import Verified, verify_version
from tests.signing.conftest import URI_130, URI_140, Signable


def verify(signable: Signable, version: str = "1.4.0", environment: str | None = "production") -> Verified | None:
    return verify_version(signable.catalog(), signable.root, "fraud-scorer", version, environment)


def test_a_version_signed_by_a_trusted_key_verifies(signable: Signable) -> None:
    uri = signable.record(URI_140, URI_140)
    digest = "sha256:" + uri.rsplit("/", 1)[1]
    assert verify(signable) == Verified("release", 1, digest)
    assert verify(signable, environment=None) == Verified("release", 1, digest)


def test_an_unsigned_version_is_refused_where_signatures_are_required(signable: Signable) -> None:
    with pytest.raises(SignatureMissing, match="fraud-scorer 1.4.0: environment production requires signed versions"):
        verify(signable)


def test_an_unsigned_version_passes_where_nothing_is_required(signable: Signable) -> None:
    assert verify(signable, environment="staging") is None
    assert verify(signable, environment="dev") is None


def test_a_key_the_environment_does_not_trust_is_refused(signable: Signable) -> None:
    signable.record(URI_140, URI_140, key="ci")
    with pytest.raises(
        UntrustedSigner, match=r"signed by ci v1, a key environment production does not trust \(it trusts: release\)"
    ):
        verify(signable)
    assert verify(signable, environment="staging") == Verified(
        "ci", 1, verify(signable, environment=None).bundle_digest
    )


def test_a_key_outside_the_policy_is_refused_everywhere(signable: Signable) -> None:
    signable.record(URI_140, URI_140, key="intruder", recorded_key="release")
    for environment in ("production", "staging", None):
        with pytest.raises(UntrustedSigner):
            verify(signable, environment=environment)


def test_a_revoked_key_version_is_refused(signable: Signable) -> None:
    signable.record(URI_140, URI_140)
    text = signable.catalog_path.read_text()
    signable.catalog_path.write_text(
        text.replace(
            "{name: release, public_key: keys/release.pub.pem}",
            "{name: release, public_key: keys/release.pub.pem, min_version: 2}",
        )
    )
    with pytest.raises(UntrustedSigner, match=r"signed by release v1, a revoked version \(min_version 2\)"):
        verify(signable)


def test_a_bundle_for_other_bytes_is_refused(signable: Signable) -> None:
    signable.record(URI_140, URI_130)  # 1.3.0's signature recorded on 1.4.0
    with pytest.raises(SignatureInvalid, match="fraud-scorer 1.4.0 .*signature is for other bytes"):
        verify(signable)


def test_a_tampered_bundle_in_the_store_is_refused(signable: Signable) -> None:
    uri = signable.record(URI_140, URI_140)
    path = signable.root / uri
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b'"hint":"', b'"hint":"0'))
    with pytest.raises(SignatureInvalid, match="fraud-scorer 1.4.0: its bundle is not the one models.yaml records"):
        verify(signable)


def test_a_bundle_gone_from_the_store_is_missing(signable: Signable) -> None:
    uri = signable.record(URI_140, URI_140)
    os.unlink(signable.root / uri)
    with pytest.raises(SignatureMissing, match="fraud-scorer 1.4.0: its bundle cannot be read"):
        verify(signable)


def test_a_record_naming_another_signer_than_the_bundle_is_refused(signable: Signable) -> None:
    signable.record(URI_140, URI_140, key="release", recorded_key="ci")
    with pytest.raises(SignatureInvalid, match="signed by release v1, but models.yaml says ci v1"):
        verify(signable, environment=None)


def test_changed_artifact_bytes_are_refused_before_the_signature_is_looked_at(signable: Signable) -> None:
    from catalog.errors import DigestMismatch

    signable.record(URI_140, URI_140)
    path: Path = signable.root / URI_140
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(DigestMismatch):
        verify(signable)


def test_an_unknown_version_is_named(signable: Signable) -> None:
    with pytest.raises(UsageError, match=r"fraud-scorer has no version 9.9.9 \(versions: 1.2.0, 1.3.0, 1.4.0\)"):
        verify(signable, version="9.9.9")
