"""Replicas fail closed, end to end: ``modelcat apply`` of an environment whose trust policy requires
signatures starts a version's replicas only when its bundle verifies against the trusted keys; a
refusal fails the apply with the replica's reason and leaves nothing of that version listening, and
``modelcat status`` says per replica who signed the bytes it serves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from catalog.artifacts.stores.local import LocalStore
from catalog.signing.bundle import sign_artifact
from catalog.signing.keys import PemKey
from tests.deploy.project import Project, output
from tests.signing.keyfiles import record_bundle, with_trust, write_key

pytestmark = pytest.mark.slow

URIS = {
    "1.3.0": "artifacts/sha256/fb/fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0",
    "1.4.0": "artifacts/sha256/34/344eb462ff67b4412ea59c01ab3b175619c097825114981a233597eaa0c8575b",
}


def trust_release_key(project: Project) -> None:
    """Keys ``release`` (trusted by production, which requires signatures) and ``intruder`` (not)."""
    for name in ("release", "intruder"):
        write_key(project.dir / "keys", name)
    keys = "    - {name: release, public_key: keys/release.pub.pem}\n"
    text = with_trust(project.catalog.read_text(), keys, "    - {environment: production, keys: [release]}\n")
    project.catalog.write_text(text)


def sign(project: Project, version: str, key: str) -> None:
    """Sign fraud-scorer ``version`` with ``key``, store the bundle, record it as signed by release v1."""
    bundle = sign_artifact(project.dir / URIS[version], PemKey(project.dir / "keys" / f"{key}.pem"))
    uri = LocalStore(Path("artifacts"), project.dir).put_blob(bundle)
    digest = "sha256:" + hashlib.sha256(bundle).hexdigest()
    project.catalog.write_text(record_bundle(project.catalog.read_text(), URIS[version], uri, digest, "release"))


def listening_versions(project: Project) -> set[str]:
    """The versions of the replicas the run records list as listening."""
    return {r.version for r in project.endpoint_records() if any(i.url for i in r.instances)}


def test_an_apply_refuses_an_unsigned_or_untrusted_version_with_the_replicas_reason(fresh_project: Project) -> None:
    trust_release_key(fresh_project)
    sign(fresh_project, "1.3.0", "release")

    missing = fresh_project.run("apply", "--auto-approve")
    assert missing.returncode != 0, output(missing)
    assert "fraud-scorer 1.4.0" in missing.stdout + missing.stderr
    assert "requires signatures and the version has no bundle" in missing.stdout + missing.stderr, output(missing)
    assert "1.4.0" not in listening_versions(fresh_project)

    sign(fresh_project, "1.4.0", "intruder")
    untrusted = fresh_project.run("apply", "--auto-approve")
    assert untrusted.returncode != 0, output(untrusted)
    assert "none of the trusted keys" in untrusted.stdout + untrusted.stderr, output(untrusted)
    assert "1.4.0" not in listening_versions(fresh_project)
    assert not [argv for _, argv in fresh_project.serving() if "1.4.0" in argv]


def test_replicas_of_signed_versions_serve_and_status_says_who_signed(fresh_project: Project) -> None:
    trust_release_key(fresh_project)
    for version in URIS:
        sign(fresh_project, version, "release")
    fresh_project.ok("apply", "--auto-approve")

    status = fresh_project.status()
    replicas = [r for a in status["applications"] for e in a["endpoints"] for r in e["replicas"]]
    assert len(replicas) == 4 and all(r["healthy"] for r in replicas), status
    assert {r["signed"] for r in replicas} == {"signed by release v1, verified"}
    assert {(r["signature"]["key"], r["signature"]["key_version"]) for r in replicas} == {("release", 1)}
    text = fresh_project.ok("status").stdout
    assert text.count("signed by release v1, verified") == 4, text

    # another trusted key: the trusted_key blocks change, an update that restarts every replica under them
    before = {i.pid for r in fresh_project.endpoint_records() for i in r.instances}
    write_key(fresh_project.dir / "keys", "ci")
    text = fresh_project.catalog.read_text()
    text = text.replace("keys: [release]}", "keys: [release, ci]}").replace(
        "    - {name: release, public_key: keys/release.pub.pem}\n",
        "    - {name: release, public_key: keys/release.pub.pem}\n    - {name: ci, public_key: keys/ci.pub.pem}\n",
    )
    fresh_project.catalog.write_text(text)
    fresh_project.ok("apply", "--auto-approve")
    after = {i.pid for r in fresh_project.endpoint_records() for i in r.instances}
    assert len(after) == 4 and not before & after
    trusts = {json.loads(Path(r.release[r.release.index("--trust") + 1]).read_text())["keys"][1]["name"]
              for r in fresh_project.endpoint_records()}  # fmt: skip
    assert trusts == {"ci"}
    assert {
        r["signed"] for a in fresh_project.status()["applications"] for e in a["endpoints"] for r in e["replicas"]
    } == {"signed by release v1, verified"}
