"""sign_version and `modelcat sign`: sign, store the bundle by digest, record it; nothing written on failure."""

from __future__ import annotations

import difflib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalog.errors import DigestMismatch, EditRefused, SigningError, UsageError
from catalog.sign import sign_version
from catalog.signing.verify import Verified, verify_version
from tests.signing.conftest import URI_140, Signable
from tests.signing.keyfiles import write_key

NOW = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)


def sign(signable: Signable, key: str = "release", version: str = "1.4.0", **kwargs: object):
    return sign_version(signable.catalog_path, "fraud-scorer", version, str(signable.key(key)), now=NOW, **kwargs)


def added_lines(before: str, after: str) -> list[str]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    assert not [line for line in diff if line.startswith("- ")]
    return [line[2:] for line in diff if line.startswith("+ ")]


def test_sign_records_the_bundle_under_the_artifact_and_it_verifies(signable: Signable) -> None:
    before = signable.catalog_path.read_text()
    record = sign(signable)
    assert (record.key, record.key_version, record.signed_at) == ("release", 1, NOW)
    assert record.uri == f"artifacts/sha256/{record.digest[7:9]}/{record.digest[7:]}"
    assert added_lines(before, signable.catalog_path.read_text()) == [
        "          bundle:",
        f"            uri: {record.uri}",
        f"            digest: {record.digest}",
        "            key: release",
        "            key_version: 1",
        "            signed_at: 2026-12-06T23:30:00Z",
    ]
    after = signable.catalog_path.read_text()
    block = after[after.index(f"uri: {URI_140}") : after.index("signature:", after.index(f"uri: {URI_140}"))]
    assert block.endswith("".join(f"{line}\n" for line in added_lines(before, after)) + "        ")
    assert verify_version(signable.catalog(), signable.root, "fraud-scorer", "1.4.0", "production") == Verified(
        "release", 1, record.digest
    )


def test_signing_again_replaces_the_record(signable: Signable) -> None:
    first = sign(signable)
    second = sign(signable, key="ci")
    text = signable.catalog_path.read_text()
    assert text.count("bundle:") == 1 and first.uri not in text and second.uri in text
    assert verify_version(signable.catalog(), signable.root, "fraud-scorer", "1.4.0", "staging").key == "ci"


def test_the_layout_around_the_last_version_is_kept(signable: Signable) -> None:
    text = signable.catalog_path.read_text()
    signable.catalog_path.write_text(
        text.replace(
            "          size_bytes: 10264\n        signature:",
            "          size_bytes: 10264 # bytes\n\n        # the tensors\n        signature:",
            1,
        )
    )
    before = signable.catalog_path.read_text()
    record = sign_version(signable.catalog_path, "recommender", "2.0.0", str(signable.key("release")), now=NOW)
    after = signable.catalog_path.read_text()
    assert added_lines(before, after)[1] == f"            uri: {record.uri}"
    assert "signed_at: 2026-12-06T23:30:00Z\n\n        # the tensors\n        signature:" in after
    assert "size_bytes: 10264 # bytes\n          bundle:\n" in after
    again = sign_version(signable.catalog_path, "recommender", "2.0.0", str(signable.key("ci")), now=NOW)
    resigned = signable.catalog_path.read_text()
    assert resigned == after.replace(record.uri, again.uri).replace(record.digest, again.digest).replace(
        "key: release", "key: ci"
    )


def unchanged(signable: Signable, before: str) -> None:
    assert signable.catalog_path.read_text() == before
    assert not list((signable.root / "artifacts").glob(".staging/*"))


def test_a_key_outside_the_trust_policy_is_refused_and_nothing_is_written(signable: Signable) -> None:
    before = signable.catalog_path.read_text()
    with pytest.raises(SigningError, match=r"intruder\.pem: is not any key of trust\.keys; add it to trust\.keys"):
        sign(signable, key="intruder")
    unchanged(signable, before)


def test_an_rsa_key_is_refused_and_nothing_is_written(signable: Signable) -> None:
    write_key(signable.root / "keys", "rsa", rsa_bits=2048)
    before = signable.catalog_path.read_text()
    with pytest.raises(SigningError, match="rsa.pem: a private key of type RSA; release keys are EC P-256 or P-384"):
        sign(signable, key="rsa")
    unchanged(signable, before)


def test_a_key_name_that_is_another_key_is_refused(signable: Signable) -> None:
    before = signable.catalog_path.read_text()
    with pytest.raises(SigningError, match="is not trust key ci"):
        sign(signable, key_name="ci")
    with pytest.raises(SigningError, match="--key-name nope: no such key in trust.keys"):
        sign(signable, key_name="nope")
    unchanged(signable, before)


def test_a_revoked_pem_key_does_not_sign(signable: Signable) -> None:
    text = signable.catalog_path.read_text()
    signable.catalog_path.write_text(text.replace("keys/release.pub.pem}", "keys/release.pub.pem, min_version: 2}"))
    before = signable.catalog_path.read_text()
    with pytest.raises(SigningError, match="below trust key release's min_version 2"):
        sign(signable)
    unchanged(signable, before)


def test_changed_artifact_bytes_are_not_signed(signable: Signable) -> None:
    path = signable.root / URI_140
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    before = signable.catalog_path.read_text()
    with pytest.raises(DigestMismatch):
        sign(signable)
    unchanged(signable, before)


def test_an_unknown_version_is_named(signable: Signable) -> None:
    with pytest.raises(UsageError, match="fraud-scorer has no version 7.0.0"):
        sign(signable, version="7.0.0")


def test_the_cli_signs_and_says_so(cli, signable: Signable, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(signable.root)
    result = cli("sign", "fraud-scorer", "--version", "1.4.0", "--key", "keys/release.pem", "--format", "json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["ok"] is True and answer["bundle"]["key"] == "release" and answer["bundle"]["key_version"] == 1
    assert answer["bundle"]["uri"] in signable.catalog_path.read_text()
    text = cli("sign", "fraud-scorer", "--version", "1.3.0", "--key", "keys/ci.pem")
    assert text.exit_code == 0 and "signed fraud-scorer 1.3.0 with ci v1: artifacts/sha256/" in text.output


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("--version", "1.4.0", "--key", "keys/intruder.pem"), 1, "add it to trust.keys"),
        (("--version", "9.0.0", "--key", "keys/release.pem"), 2, "has no version 9.0.0"),
        (("--version", "1.4.0", "--key", "keys/absent.pem"), 1, "cannot read the key"),
    ],
)
def test_the_cli_fails_with_ok_false_and_leaves_the_catalog(
    cli, signable: Signable, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], code: int, says: str
) -> None:
    monkeypatch.chdir(signable.root)
    before = signable.catalog_path.read_text()
    result = cli("sign", "fraud-scorer", *args, "--format", "json")
    assert result.exit_code == code, result.output
    answer = json.loads(result.output)
    assert answer["ok"] is False and says in answer["error"]["message"]
    unchanged(signable, before)
    text = cli("sign", "fraud-scorer", *args)
    assert text.exit_code == code and says in text.output


def test_an_artifact_changed_while_signing_is_not_recorded(signable: Signable, monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog import sign as signing

    sign_artifact = signing.sign_artifact

    def meanwhile(path: Path, key: object) -> bytes:  # another writer registers other bytes as 1.4.0
        text = signable.catalog_path.read_text()
        signable.catalog_path.write_text(text.replace(URI_140.rsplit("/", 1)[1], "e" * 64, 2))
        return sign_artifact(path, key)  # type: ignore[arg-type]

    monkeypatch.setattr(signing, "sign_artifact", meanwhile)
    with pytest.raises(EditRefused, match="fraud-scorer 1.4.0's artifact changed in .* while signing"):
        sign(signable)
    assert "bundle:" not in signable.catalog_path.read_text()
