"""`modelcat verify` verifies the release signatures too: every signed version's, and every version an
environment requiring signatures serves, once per such environment (against every trust key when
none serves it), named "signed by KEY vN, verified"; a failure names the version's line, exits 1 and
says ``"ok": false``; Vault sealed stops it with exit 2 and the reason, never the token."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from catalog.artifacts.stores.local import LocalStore
from catalog.signing.bundle import sign_artifact
from catalog.signing.keys import PemKey
from catalog.validate import load_catalog
from tests.signing.conftest import URI_130, URI_140
from tests.signing.keyfiles import write_key

PRODUCTION = {("fraud-scorer", "1.3.0"), ("fraud-scorer", "1.4.0"), ("recommender", "2.1.0")}
PRODUCTION |= {("recommender", "2.2.0"), ("search-ranker", "3.2.0")}


def _verify(cli, workspace: Path) -> tuple[int, dict]:
    result = cli("verify", "--catalog", workspace / "models.yaml", "--format", "json")
    return result.exit_code, json.loads(result.output)


def _bundle(workspace: Path, artifact_uri: str) -> tuple[str, str]:
    """The URI and digest of the bundle recorded for the version whose artifact is ``artifact_uri``."""
    catalog = load_catalog(workspace / "models.yaml")
    version = next(v for m in catalog.models for v in m.versions if v.artifact.uri == artifact_uri)
    assert version.artifact.bundle is not None
    return version.artifact.bundle.uri, version.artifact.bundle.digest


def _record_instead(workspace: Path, artifact_uri: str, uri: str, digest: str) -> None:
    """The version whose artifact is ``artifact_uri`` recorded with the bundle ``uri``/``digest`` instead."""
    path = workspace / "models.yaml"
    old_uri, old_digest = _bundle(workspace, artifact_uri)
    path.write_text(path.read_text().replace(old_uri, uri).replace(old_digest, digest))


def _line(workspace: Path, number: int) -> str:
    return (workspace / "models.yaml").read_text().splitlines()[number - 1].split("#")[0].strip()


def _failed(report: dict) -> list[dict]:
    return [s for s in report["signatures"] if not s["ok"]]


def test_verify_names_the_signature_of_every_version_of_the_demo_catalog(cli, workspace: Path) -> None:
    code, report = _verify(cli, workspace)
    assert code == 0 and report["ok"] is True
    checked = {(s["model"], s["version"], s["environment"]) for s in report["signatures"]}
    catalog = load_catalog(workspace / "models.yaml")
    every = {(m.name, v.version) for m in catalog.models for v in m.versions}
    assert checked == {(m, v, "production" if (m, v) in PRODUCTION else None) for m, v in every}
    assert {s["message"] for s in report["signatures"]} == {"signed by demo-release v1, verified"}
    text = cli("verify", "--catalog", workspace / "models.yaml").output
    assert "fraud-scorer 1.4.0 for production: signed by demo-release v1, verified" in text
    assert "fraud-scorer 1.2.0: signed by demo-release v1, verified" in text
    assert "11 signatures checked: 11 verified, 0 failed" in text


def test_verify_fails_a_bundle_tampered_with_in_the_store_at_its_versions_line(cli, workspace: Path) -> None:
    uri, _ = _bundle(workspace, URI_140)
    path = workspace / uri
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b'"hint":"', b'"hint":"0'))
    code, report = _verify(cli, workspace)
    assert code == 1 and report["ok"] is False
    assert report["error"]["code"] == "signatures_failed"
    (failed,) = _failed(report)
    assert (failed["model"], failed["version"], failed["environment"]) == ("fraud-scorer", "1.4.0", "production")
    assert "its bundle is not the one models.yaml records" in failed["message"]
    assert _line(workspace, failed["line"]) == "- version: 1.4.0"
    text = cli("verify", "--catalog", workspace / "models.yaml")
    assert text.exit_code == 1
    assert f"{workspace / 'models.yaml'}:{failed['line']}: fraud-scorer 1.4.0 for production: its bundle" in text.output
    assert "11 signatures checked: 10 verified, 1 failed" in text.output


def test_verify_fails_a_bundle_for_other_bytes(cli, workspace: Path) -> None:
    """1.4.0 recorded with 1.3.0's genuine bundle: signed by the trusted key, over other bytes."""
    _record_instead(workspace, URI_140, *_bundle(workspace, URI_130))
    code, report = _verify(cli, workspace)
    assert code == 1 and report["ok"] is False
    (failed,) = _failed(report)
    assert (failed["model"], failed["version"]) == ("fraud-scorer", "1.4.0")
    assert "signature is for other bytes" in failed["message"]
    assert _line(workspace, failed["line"]) == "- version: 1.4.0"


def test_verify_fails_a_signature_by_a_key_production_does_not_trust(cli, workspace: Path) -> None:
    """An intruder's signature over 1.4.0's bytes, recorded as demo-release's: only the signature tells."""
    bundle = sign_artifact(workspace / URI_140, PemKey(write_key(workspace / "keys", "intruder")))
    uri = LocalStore(Path("artifacts"), workspace).put_blob(bundle)
    _record_instead(workspace, URI_140, uri, "sha256:" + uri.rsplit("/", 1)[1])
    code, report = _verify(cli, workspace)
    assert code == 1 and report["ok"] is False
    (failed,) = _failed(report)
    assert (failed["model"], failed["version"], failed["environment"]) == ("fraud-scorer", "1.4.0", "production")
    assert failed["message"] == "signed by a key none of the trusted keys is (trusted: demo-release v1)"
    assert _line(workspace, failed["line"]) == "- version: 1.4.0"


def test_verify_fails_an_unsigned_version_production_serves(cli, workspace: Path) -> None:
    path = workspace / "models.yaml"
    text, count = re.subn(
        rf"(uri: {re.escape(URI_140)}\n(?:.*\n)*?\s+size_bytes: .*\n)\s+bundle:\n(?:\s+(?:uri|digest|key|key_version|signed_at): .*\n)+",
        r"\1",
        path.read_text(),
    )
    assert count == 1
    path.write_text(text)
    code, report = _verify(cli, workspace)
    assert code == 1 and report["ok"] is False
    (failed,) = _failed(report)
    assert failed["message"] == "environment production requires signed versions and this one has none"
    assert _line(workspace, failed["line"]) == "- version: 1.4.0"


def test_verify_stops_with_the_reason_when_vault_is_sealed(
    cli, workspace: Path, vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production trusts a Vault Transit key too: its public keys cannot be read, so nothing is judged (exit 2)."""
    vault.create_key("release")
    for name, value in vault.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODELCAT_VAULT_ATTEMPTS", "1")
    path = workspace / "models.yaml"
    text = path.read_text().replace(
        "  environments:\n", "    - name: transit\n      vault: vault://transit/keys/release\n  environments:\n", 1
    )
    path.write_text(text.replace("keys: [demo-release]", "keys: [demo-release, transit]"))
    vault.seal()
    for fmt in ("text", "json"):
        result = cli("verify", "--catalog", path, "--format", fmt)
        assert result.exit_code == 2
        assert "sealed" in result.output.lower()
        assert vault.token not in result.output
    assert json.loads(result.output)["ok"] is False
