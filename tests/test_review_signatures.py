"""`modelcat review BASE` verifies, cryptographically, the release signatures a change touches
(catalog.signing.verify.verify_version): a bundle by a key production does not trust, for other
bytes, tampered with in the store, or by a revoked key version blocks the change with its reason,
at its version's line; an unsigned production route is MC014's. Plus which signatures a change
touches (``signatures_to_verify``), a pure function."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.artifacts.stores.local import LocalStore
from catalog.signing.bundle import sign_artifact
from catalog.signing.checks import signatures_to_verify
from tests.git_catalogs import GitRepo, catalog_of, demo_text
from tests.helpers import run_review
from tests.sarif_validators import multitool_problems, sarif_errors
from tests.signing.conftest import TRUST_ENVIRONMENTS, TRUST_KEYS, URI_130, URI_140, Signable
from tests.signing.keyfiles import record_bundle, with_trust, write_key


def _production_uris(text: str) -> list[str]:
    """The artifact URIs of every version a production application routes traffic to."""
    catalog = catalog_of(text)
    served = {
        (b.model, r.version)
        for a in catalog.applications
        if a.environment == "production"
        for b in a.bindings
        for r in b.routes
        if r.weight > 0
    }
    return [v.artifact.uri for m in catalog.models for v in m.versions if (m.name, v.version) in served]


@pytest.fixture
def signed(repo: GitRepo) -> Signable:
    """The demo repository with a trust policy (production requires signatures by release, staging
    trusts ci) and every version production serves signed by release, committed as HEAD."""
    for name in ("release", "ci"):
        write_key(repo.root / "keys", name)
    text = with_trust(demo_text(), TRUST_KEYS, TRUST_ENVIRONMENTS)
    repo.catalog.write_text(text)
    signable = Signable(repo.root)
    for uri in _production_uris(text):
        signable.record(uri, uri)
    repo.git("add", "keys", "artifacts")
    repo.commit(repo.catalog.read_text(), "trust policy; production versions signed by release", "signed")
    return signable


def _bundle_of(text: str, artifact_uri: str) -> str:
    match = re.search(rf"uri: {re.escape(artifact_uri)}\n(?:.*\n)*?\s+bundle:\n\s+uri: (\S+)\n", text)
    assert match, artifact_uri
    return match.group(1)


def _without_bundle(text: str, artifact_uri: str) -> str:
    """``text`` without the bundle recorded under the artifact ``artifact_uri``."""
    pattern = rf"(uri: {re.escape(artifact_uri)}\n(?:.*\n)*?\s+size_bytes: .*\n)\s+bundle:\n(?:\s+(?:uri|digest|key|key_version|signed_at): .*\n)+"
    stripped, count = re.subn(pattern, r"\1", text)
    assert count == 1
    return stripped


def _resign(signed: Signable, key: str = "release", signed_uri: str = URI_140, recorded: str | None = None) -> None:
    """1.4.0's bundle replaced by one over ``signed_uri``'s bytes signed by ``key`` (recorded as ``recorded``)."""
    signed.catalog_path.write_text(_without_bundle(signed.catalog_path.read_text(), URI_140))
    signed.record(URI_140, signed_uri, key=key, recorded_key=recorded)


def _signature_results(sarif: dict) -> list[dict]:
    return [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "SIGNATURE"]


def _line(result: dict) -> str:
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    return Path("models.yaml").read_text().splitlines()[line - 1].split("#")[0].strip()


def test_review_verifies_the_signature_a_change_adds(cli, signed: Signable) -> None:
    _resign(signed)
    code, comment, sarif, report = run_review(cli, "HEAD")
    assert code == 0, comment
    assert "| signatures the change touches | ✅ | 1 verified |" in comment
    assert report["signatures"] == [
        {
            "model": "fraud-scorer",
            "version": "1.4.0",
            "environment": "production",
            "ok": True,
            "message": "signed by release v1, verified",
        }
    ]
    assert sarif_errors(sarif) == []


def test_a_signature_by_a_key_production_does_not_trust_blocks_the_review(cli, signed: Signable) -> None:
    """models.yaml says release signed it, so MC014 sees nothing wrong: only the signature tells."""
    _resign(signed, key="ci", recorded="release")
    code, comment, sarif, report = run_review(cli, "HEAD")
    assert code == 1
    assert comment.startswith("## ❌ modelcat review: 1 problem blocks this change")
    assert "| signatures the change touches | ❌ | 1 of 1 failed |" in comment
    assert "### Signatures" in comment and "| fraud-scorer 1.4.0 for production | " in comment
    (result,) = _signature_results(sarif)
    assert result["message"]["text"] == (
        "fraud-scorer 1.4.0 for production: signed by ci v1, a key environment production does not trust "
        "(it trusts: release)"
    )
    assert _line(result) == "- version: 1.4.0"
    assert [f["rule"] for f in report["policy"]["findings"]] == ["SIGNATURE"]
    assert sarif_errors(sarif) == []


@pytest.mark.slow
def test_a_signature_finding_passes_microsofts_sarif_validator(cli, signed: Signable, tmp_path: Path) -> None:
    _resign(signed, key="ci", recorded="release")
    code, _, sarif, _ = run_review(cli, "HEAD")
    assert code == 1
    rules = {r["id"]: r for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["SIGNATURE"]["name"] == "ReleaseSignatureVerifies"
    assert multitool_problems(sarif, tmp_path / "validator") == []


def test_a_bundle_for_other_bytes_blocks_the_review(cli, signed: Signable) -> None:
    _resign(signed, signed_uri=URI_130)  # a genuine signature by release, over 1.3.0's bytes
    code, _, sarif, _ = run_review(cli, "HEAD")
    assert code == 1
    (result,) = _signature_results(sarif)
    assert "signature is for other bytes" in result["message"]["text"]


def test_a_bundle_tampered_with_in_the_store_blocks_the_review(cli, signed: Signable, repo: GitRepo) -> None:
    """models.yaml is unchanged: the bundle's file changed in git makes its version touched."""
    path = repo.root / _bundle_of(signed.catalog_path.read_text(), URI_140)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b'"hint":"', b'"hint":"0'))
    repo.git("add", str(path))
    repo.git("commit", "-q", "-m", "a bundle edited in place")
    code, _, sarif, _ = run_review(cli, "HEAD~1")
    assert code == 1
    (result,) = _signature_results(sarif)
    assert (
        "fraud-scorer 1.4.0 for production: its bundle is not the one models.yaml records" in result["message"]["text"]
    )


def test_a_revoked_key_version_blocks_the_review(cli, signed: Signable) -> None:
    """Raising release's min_version revokes its version 1: every production signature by it is
    verified again and refused, and MC014 denies the routes from the recorded versions."""
    text = signed.catalog_path.read_text()
    revoked = "{name: release, public_key: keys/release.pub.pem, min_version: 2}"
    signed.catalog_path.write_text(text.replace("{name: release, public_key: keys/release.pub.pem}", revoked))
    code, _, _, report = run_review(cli, "HEAD")
    assert code == 1
    failed = [s for s in report["signatures"] if not s["ok"]]
    assert len(failed) == len(_production_uris(text)) == len(report["signatures"])
    assert all("a revoked version (min_version 2)" in s["message"] for s in failed)
    mc014 = [f["message"] for f in report["policy"]["findings"] if f["rule"] == "MC014"]
    assert (
        "checkout: fraud-scorer 1.4.0 is signed by key release version 1, below its min_version 2 "
        "(a revoked key version): sign it again with the current version"
    ) in mc014


def test_an_unsigned_production_route_is_blocked_by_mc014(cli, signed: Signable) -> None:
    signed.catalog_path.write_text(_without_bundle(signed.catalog_path.read_text(), URI_140))
    code, _, sarif, report = run_review(cli, "HEAD")
    assert code == 1
    assert report["signatures"] == []  # nothing to verify: MC014 says it
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == "MC014"
    assert result["message"]["text"].startswith(
        "checkout: fraud-scorer 1.4.0 is not signed, and environment production serves only versions signed by "
        "a key it trusts (release)"
    )
    assert _line(result) == "- model: fraud-scorer"


# -- a Vault Transit key -----------------------------------------------------------------------------


@dataclass
class TransitVersion:
    """One version of a fake Vault's Transit key, signing as Vault does (the ReleaseKey protocol)."""

    private: ec.EllipticCurvePrivateKey
    version: int

    def public_key_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message, ec.ECDSA(hashes.SHA256()))


@pytest.fixture
def vault_signed(signed: Signable, repo: GitRepo, vault, monkeypatch: pytest.MonkeyPatch) -> Signable:
    """``signed`` with a Vault Transit key ``transit`` (versions 1 and 2, min_version 2) that
    production trusts beside release, committed as HEAD; VAULT_ADDR and VAULT_TOKEN set."""
    vault.create_key("release")
    vault.rotate("release")
    for name, value in vault.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODELCAT_VAULT_ATTEMPTS", "1")
    text = signed.catalog_path.read_text()
    text = text.replace(
        "    - {name: ci, public_key: keys/ci.pub.pem}\n",
        "    - {name: ci, public_key: keys/ci.pub.pem}\n"
        "    - {name: transit, vault: vault://transit/keys/release, min_version: 2}\n",
    ).replace("{environment: production, keys: [release]}", "{environment: production, keys: [release, transit]}")
    repo.commit(text, "production trusts the Vault key too", "vault-trusted")
    return signed


def _sign_with_transit(signed: Signable, vault, version: int) -> None:
    """1.4.0's bundle replaced by one signed by version ``version`` of the fake Vault's key."""
    key = TransitVersion(vault.keys[("transit", "release")].private(version), version)
    bundle = sign_artifact(signed.root / URI_140, key)
    uri = LocalStore(Path("artifacts"), signed.root).put_blob(bundle)
    text = _without_bundle(signed.catalog_path.read_text(), URI_140)
    digest = "sha256:" + uri.rsplit("/", 1)[1]
    signed.catalog_path.write_text(record_bundle(text, URI_140, uri, digest, "transit", version))


def test_review_verifies_a_signature_by_a_vault_key_version(cli, vault_signed: Signable, vault) -> None:
    _sign_with_transit(vault_signed, vault, 2)
    code, comment, _, report = run_review(cli, "HEAD")
    assert code == 0, comment
    assert [(s["version"], s["ok"], s["message"]) for s in report["signatures"]] == [
        ("1.4.0", True, "signed by transit v2, verified")
    ]


def test_a_revoked_vault_key_version_blocks_the_review(cli, vault_signed: Signable, vault) -> None:
    _sign_with_transit(vault_signed, vault, 1)
    code, _, sarif, report = run_review(cli, "HEAD")
    assert code == 1
    (result,) = _signature_results(sarif)
    assert "signed by transit v1, a revoked version (min_version 2)" in result["message"]["text"]
    assert "MC014" in {f["rule"] for f in report["policy"]["findings"]}


def test_a_sealed_vault_stops_the_review_with_its_reason(cli, vault_signed: Signable, vault) -> None:
    """The trust keys cannot be read: nothing is judged verified (exit 2, an environment error)."""
    _sign_with_transit(vault_signed, vault, 2)
    vault.seal()
    result = cli("review", "HEAD", "--now", "2026-11-27")
    assert result.exit_code == 2
    assert "sealed" in result.output.lower()
    assert vault.token not in result.output


# -- which signatures a change touches -------------------------------------------------------------

HEX = "c" * 64
BUNDLE = f"bundle: {{uri: artifacts/sha256/cc/{HEX}, digest: 'sha256:{HEX}', key: release, key_version: 1, signed_at: 2026-12-06T23:00:00Z}}"


def _catalog(trust_environments: str = TRUST_ENVIRONMENTS, *, sign: tuple[str, ...] = (URI_140,), text: str = ""):
    text = with_trust(text or demo_text(), TRUST_KEYS, trust_environments)
    for uri in sign:
        text = re.sub(rf"(uri: {re.escape(uri)}\n(?:.*\n)*?(\s+)size_bytes: .*\n)", rf"\1\2{BUNDLE}\n", text, count=1)
    return catalog_of(text)


def test_a_touched_signed_version_is_verified_for_each_environment_requiring_signatures_that_serves_it():
    head = _catalog()
    assert signatures_to_verify(head, head, frozenset({("fraud-scorer", "1.4.0")})) == [
        ("fraud-scorer", "1.4.0", "production")
    ]


def test_a_touched_signed_version_no_requiring_environment_serves_is_verified_against_every_key():
    head = _catalog(
        TRUST_ENVIRONMENTS.replace("{environment: production,", "{environment: production, require_signatures: false,")
    )
    assert signatures_to_verify(head, head, frozenset({("fraud-scorer", "1.4.0")})) == [("fraud-scorer", "1.4.0", None)]


def test_untouched_and_unsigned_versions_are_not_verified():
    head = _catalog()
    assert signatures_to_verify(head, head, frozenset()) == []
    assert signatures_to_verify(head, head, frozenset({("fraud-scorer", "1.3.0")})) == []  # unsigned: MC014's


def test_a_signed_version_production_starts_serving_or_judges_by_other_keys_is_verified():
    base = _catalog(
        TRUST_ENVIRONMENTS.replace("{environment: production,", "{environment: production, require_signatures: false,")
    )
    head = _catalog()
    assert signatures_to_verify(base, head, frozenset()) == [("fraud-scorer", "1.4.0", "production")]
    other_keys = _catalog(TRUST_ENVIRONMENTS.replace("keys: [release]", "keys: [release, ci]"))
    assert signatures_to_verify(other_keys, head, frozenset()) == [("fraud-scorer", "1.4.0", "production")]
    assert signatures_to_verify(head, head, frozenset()) == []
