"""``modelcat attest``: a signed in-toto statement binding a version's artifact digest to the catalog
commit that released it, its metrics, the policies' decision and the analysis of the rollout that
promoted it; and its verification, which refuses a tampered or re-bound statement."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.attest import PREDICATE_TYPE, verify_attestation
from catalog.domain.rollouts import RolloutRecord
from catalog.errors import SignatureInvalid, UntrustedSigner
from catalog.signing.bundle import seal_statement
from catalog.signing.keys import PemKey
from tests.helpers import ROOT
from tests.rollout.recorded import T2, T4, hand_commit, recorded_repository, started_repository

DEMO_KEY = ROOT / "keys" / "demo-release.pem"


def _attest(cli, *args: str) -> dict:
    result = cli("attest", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _envelope(path: Path) -> dict:
    return json.loads(path.read_bytes())["dsseEnvelope"]


def _statement(path: Path) -> dict:
    return json.loads(base64.b64decode(_envelope(path)["payload"]))


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, written from its specification (the test's own oracle)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _resealed(statement: dict, key: Path = DEMO_KEY) -> bytes:
    return seal_statement(json.dumps(statement, sort_keys=True, separators=(",", ":")).encode(), PemKey(key))


@pytest.fixture
def promoted(tmp_path, monkeypatch):
    """The recorded repository: the demo catalog (its trust policy and signatures), 1.4.0 promoted by
    its rollout at T4."""
    return recorded_repository(tmp_path / "catalog", monkeypatch)


def test_attest_binds_the_promoted_version_to_its_release_commit_metrics_policy_and_rollout_analysis(
    cli, promoted
) -> None:
    repo, recorder = promoted
    out = repo.root / "release.json"
    document = _attest(cli, "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), "--out", str(out))
    assert document["ok"] is True and document["key"]["name"] == "demo-release"
    statement = _statement(out)
    assert statement == document["statement"]
    assert statement["_type"] == "https://in-toto.io/Statement/v1" and statement["predicateType"] == PREDICATE_TYPE
    digest = "344eb462ff67b4412ea59c01ab3b175619c097825114981a233597eaa0c8575b"
    assert statement["subject"] == [{"name": "fraud-scorer@1.4.0", "digest": {"sha256": digest}}]
    predicate = statement["predicate"]
    promote = recorder.shas[-1]
    assert predicate["catalog"]["commit"] == repo.git("rev-parse", "HEAD") == promote
    assert predicate["released_from"]["commit"] == promote
    assert (predicate["released_from"]["kind"], predicate["released_from"]["decision"]) == ("rollout", "promote")
    assert predicate["routes"] == [
        {"application": "checkout", "environment": "production", "weight": 100, "commit": promote, "time": T4}
    ]
    assert predicate["metrics"] == {"auc": 0.928, "precision_at_1pct": 0.77, "recall": 0.69}
    # the analysis document the promotion acted on, as committed, with the digest its trailer names
    rollout = predicate["rollout"]
    record = RolloutRecord.from_json(json.loads(repo.git("show", f"{promote}:{rollout['record']}")))
    assert rollout["evidence"] == record.last.evidence and rollout["evidence"]["versions"]
    trailer = repo.git("log", "-1", "--format=%(trailers:key=Evidence,valueonly)", promote)
    assert trailer == f"{rollout['record']}#2 {rollout['evidence_digest']}"
    policy = predicate["policy"]
    assert policy["decision"] == "allow" and policy["base"] == repo.git("rev-parse", f"{promote}^")
    assert "MC004" in policy["rules"] and policy["policies_digest"].startswith("sha256:")


def test_attestation_signature_is_dsse_over_the_statement_by_the_demo_key(cli, promoted) -> None:
    repo, _ = promoted
    out = repo.root / "release.json"
    _attest(cli, "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), "--out", str(out))
    envelope = _envelope(out)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    payload = base64.b64decode(envelope["payload"])
    public = serialization.load_pem_public_key((ROOT / "keys" / "demo-release.pub.pem").read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    public.verify(signature, _pae(envelope["payloadType"], payload), ec.ECDSA(hashes.SHA256()))


def test_attest_verify_accepts_the_attestation_it_made(cli, promoted) -> None:
    repo, recorder = promoted
    out = repo.root / "release.json"
    _attest(cli, "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), "--out", str(out))
    result = cli("attest", "--verify", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("verified fraud-scorer 1.4.0 (sha256:344eb462ff67): released from ")
    assert "signed by demo-release v1" in result.output
    checked = verify_attestation(repo.catalog, out.read_bytes(), "release.json")
    assert checked.release.released_from.commit.sha == recorder.shas[-1]


def test_attest_verify_refuses_a_statement_altered_after_signing(cli, promoted) -> None:
    repo, _ = promoted
    out = repo.root / "release.json"
    _attest(cli, "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), "--out", str(out))
    bundle = json.loads(out.read_bytes())
    statement = _statement(out)
    statement["predicate"]["metrics"]["auc"] = 0.99
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    out.write_text(json.dumps(bundle))
    result = cli("attest", "--verify", str(out), "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["ok"] is False and document["error"]["code"] == "signature_invalid"
    assert "does not verify" in document["error"]["message"]


@pytest.mark.parametrize(
    ("field", "change", "named"),
    [
        ("subject", lambda s: s["subject"][0]["digest"].update(sha256="0" * 64), "subject"),
        ("released_from", lambda s: s["predicate"]["released_from"].update(commit="f" * 40), "released_from"),
        ("metrics", lambda s: s["predicate"]["metrics"].update(auc=0.99), "metrics"),
        ("rollout", lambda s: s["predicate"]["rollout"]["evidence"].update(srm=True), "rollout"),
    ],
)
def test_attest_verify_refuses_a_statement_signed_again_with_facts_git_does_not_hold(
    cli, promoted, field, change, named
) -> None:
    """A trusted key that signs a statement whose facts git does not give does not make them true."""
    repo, _ = promoted
    out = repo.root / "release.json"
    _attest(cli, "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), "--out", str(out))
    statement = _statement(out)
    change(statement)
    out.write_bytes(_resealed(statement))
    with pytest.raises(SignatureInvalid) as caught:
        verify_attestation(repo.catalog, out.read_bytes(), "release.json")
    assert f"{named} differ" in str(caught.value) or f"{named}, " in str(caught.value)


def test_attest_verify_refuses_a_commit_the_repository_does_not_have(cli, promoted) -> None:
    repo, _ = promoted
    out = repo.root / "release.json"
    _attest(cli, "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), "--out", str(out))
    statement = _statement(out)
    statement["predicate"]["catalog"]["commit"] = "e" * 40
    out.write_bytes(_resealed(statement))
    with pytest.raises(SignatureInvalid, match="cannot be found in this repository"):
        verify_attestation(repo.catalog, out.read_bytes(), "release.json")


def test_attest_refuses_a_key_production_does_not_trust(cli, promoted, tmp_path) -> None:
    repo, _ = promoted
    other = tmp_path / "other.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    other.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    out = repo.root / "release.json"
    result = cli(
        "attest", "fraud-scorer", "--version", "1.4.0", "--key", str(other), "--out", str(out), "--format", "json"
    )
    assert result.exit_code == 1 and not out.exists()
    assert json.loads(result.output)["error"]["code"] == "untrusted_signer"
    # and one made with it anyway is refused on verification
    good = repo.root / "good.json"
    _attest(cli, "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), "--out", str(good))
    good.write_bytes(_resealed(_statement(good), key=other))
    with pytest.raises(UntrustedSigner):
        verify_attestation(repo.catalog, good.read_bytes(), "good.json")


def test_attest_of_a_canary_names_the_rollout_start_and_of_the_base_version_the_commit_that_lowered_it(
    cli, tmp_path, monkeypatch
) -> None:
    _, recorder = started_repository(tmp_path / "catalog", monkeypatch)
    canary = _attest(cli, "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), "--out", "a.json")["statement"]
    predicate = canary["predicate"]
    assert predicate["released_from"]["commit"] == recorder.shas[0]
    assert predicate["routes"][0]["weight"] == 10 and predicate["routes"][0]["time"] == T2
    assert predicate["rollout"]["decision"] == "start" and predicate["rollout"]["evidence"] is None
    base = _attest(cli, "fraud-scorer", "--version", "1.3.0", "--key", str(DEMO_KEY), "--out", "b.json")["statement"]
    assert base["predicate"]["released_from"]["commit"] == recorder.shas[0]  # 100 % -> 90 % at the start
    assert base["predicate"]["routes"][0]["weight"] == 90 and base["predicate"]["rollout"] is None


def test_attest_records_a_policy_deny_with_its_finding_and_a_later_edit_keeps_the_release_commit(cli, promoted) -> None:
    repo, recorder = promoted
    text = repo.catalog.read_text(encoding="utf-8").replace(
        "metrics: {auc: 0.928, precision_at_1pct: 0.77, recall: 0.69}",
        "metrics: {auc: 0.85, precision_at_1pct: 0.77, recall: 0.69}",
    )
    edited = hand_commit(repo, text, "fraud-scorer 1.4.0: auc measured again", "2026-12-07T10:00:00Z")
    out = ["--out", "a.json"]
    predicate = _attest(cli, "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), *out)["statement"][
        "predicate"
    ]
    assert predicate["catalog"]["commit"] == edited and predicate["released_from"]["commit"] == recorder.shas[-1]
    assert predicate["metrics"]["auc"] == 0.85
    policy = predicate["policy"]
    assert policy["decision"] == "deny"
    assert [(f["rule"], f["subject"]) for f in policy["findings"] if f["severity"] == "deny"] == [
        ("MC004", "binding/checkout/fraud-scorer")
    ]


def test_attest_refuses_a_version_no_application_routes(cli, promoted) -> None:
    repo, _ = promoted
    result = cli("attest", "fraud-scorer", "--version", "1.3.0", "--key", str(DEMO_KEY), "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["ok"] is False and "no application routes it" in document["error"]["message"]
    assert not list(repo.root.glob("*.attestation.json"))


def test_attest_refuses_a_catalog_with_changes_not_committed(cli, promoted) -> None:
    repo, _ = promoted
    repo.catalog.write_text(repo.catalog.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    result = cli("attest", "fraud-scorer", "--version", "1.4.0", "--key", str(DEMO_KEY), "--format", "json")
    assert result.exit_code == 2
    assert "changes not committed" in json.loads(result.output)["error"]["message"]


def test_attest_with_a_vault_transit_key_verifies_until_its_version_is_revoked(
    cli, promoted, vault, monkeypatch
) -> None:
    """The statement signed in Vault (the private key never leaves it) names the key version that
    signed; raising the key's min_version above it revokes the attestation too."""
    repo, _ = promoted
    vault.create_key("release")
    vault.rotate("release")  # version 2 signs
    for name, value in (vault.env() | {"MODELCAT_VAULT_ATTEMPTS": "1", "MODELCAT_VAULT_TIMEOUT": "30"}).items():
        monkeypatch.setenv(name, value)
    trusting = (
        repo.catalog.read_text(encoding="utf-8")
        .replace(
            "      public_key: keys/demo-release.pub.pem # DEMO ONLY: keys/README.md\n",
            "      public_key: keys/demo-release.pub.pem # DEMO ONLY: keys/README.md\n"
            "    - {name: release, vault: vault://transit/keys/release, min_version: 1}\n",
        )
        .replace("      keys: [demo-release]\n", "      keys: [demo-release, release]\n")
    )
    hand_commit(repo, trusting, "trust the Vault release key in production", "2026-12-07T09:00:00Z")
    out = repo.root / "vault.json"
    document = _attest(
        cli, "fraud-scorer", "--version", "1.4.0", "--key", "vault://transit/keys/release", "--out", str(out)
    )
    assert (document["key"]["name"], document["key"]["version"]) == ("release", 2)
    verified = cli("attest", "--verify", str(out))
    assert verified.exit_code == 0 and "attestation signed by release v2" in verified.output, verified.output
    revoked = trusting.replace("min_version: 1}", "min_version: 3}")
    hand_commit(repo, revoked, "revoke release v2", "2026-12-07T10:00:00Z")
    refused = cli("attest", "--verify", str(out), "--format", "json")
    assert refused.exit_code == 1 and json.loads(refused.output)["error"]["code"] == "untrusted_signer"
