"""``modelcat validate`` checks the trust policy (``trust:``) and the signature bundles that name it:
every problem with file, line and field, exit 1, the file untouched, all of them at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from catalog.validate import validate_file
from tests.helpers import MINIMAL, line_of, reported_problem

CC = "c" * 64
BUNDLE = (
    f'          bundle: {{uri: artifacts/sha256/cc/{CC}, digest: "sha256:{CC}", key: release, key_version: 1, '
    "signed_at: 2026-01-03T00:00:00Z}\n"
)
TRUST = """\
trust:
  keys:
    - {name: release, public_key: keys/release.pub.pem}
    - {name: transit, vault: vault://transit/keys/release, min_version: 2}
  environments:
    - {environment: production, keys: [release, transit]}
"""


def signed_catalog(trust: str = TRUST, bundle: str = BUNDLE) -> str:
    """MINIMAL with a trust policy and version 1.0.0 signed by ``release``."""
    text = MINIMAL.replace("models:\n", trust + "models:\n", 1)
    return text.replace("          size_bytes: 2048\n", "          size_bytes: 2048\n" + bundle, 1)


def public_pem(private) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """A folder with keys/release.pub.pem, an EC P-256 public key."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "release.pub.pem").write_bytes(public_pem(ec.generate_private_key(ec.SECP256R1())))
    return tmp_path


def test_a_trust_policy_with_a_signed_version_is_valid(catalog_dir: Path):
    path = catalog_dir / "models.yaml"
    path.write_text(signed_catalog())
    report = validate_file(path)
    assert report.ok, report.errors
    assert report.catalog is not None and report.catalog.models[0].versions[0].artifact.bundle is not None


def test_a_p384_public_key_is_accepted(catalog_dir: Path):
    (catalog_dir / "keys" / "release.pub.pem").write_bytes(public_pem(ec.generate_private_key(ec.SECP384R1())))
    path = catalog_dir / "models.yaml"
    path.write_text(signed_catalog())
    assert validate_file(path).ok


def _pem_bytes(kind: str) -> bytes:
    if kind == "p521":
        return public_pem(ec.generate_private_key(ec.SECP521R1()))
    if kind == "rsa":
        return public_pem(rsa.generate_private_key(65537, 2048))
    if kind == "ed25519":
        return public_pem(ed25519.Ed25519PrivateKey.generate())
    if kind == "private":
        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return b"not a key\n"


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("p521", "is an EC key on curve secp521r1; release keys are EC P-256 or P-384"),
        ("rsa", "is a public key of type RSA; release keys are EC P-256 or P-384"),
        ("ed25519", "is a public key of type Ed25519; release keys are EC P-256 or P-384"),
        ("private", "holds a private key: commit only the public half"),
        ("garbage", "is not a PEM public key"),
    ],
)
def test_a_public_key_that_is_not_ec_p256_or_p384_is_refused_at_its_line(cli, catalog_dir: Path, kind, words):
    (catalog_dir / "keys" / "release.pub.pem").write_bytes(_pem_bytes(kind))
    path = catalog_dir / "models.yaml"
    text = signed_catalog()
    path.write_text(text)
    problem = reported_problem(cli, path, "trust.key-file")
    assert f"public key keys/release.pub.pem of trust key 'release' {words}" in problem["message"]
    assert problem["line"] == line_of(text, "public_key: keys/release.pub.pem")
    assert problem["path"] == "trust.keys[release].public_key"
    assert problem["hint"]


def test_a_missing_public_key_file_is_refused(cli, tmp_path: Path):
    path = tmp_path / "models.yaml"
    path.write_text(signed_catalog())
    problem = reported_problem(cli, path, "trust.key-file")
    assert problem["message"] == "public key keys/release.pub.pem of trust key 'release' does not exist"


def test_the_public_key_is_read_relative_to_the_catalog_not_the_working_directory(
    cli, catalog_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (catalog_dir / "teams").mkdir()
    (catalog_dir / "teams" / "keys").mkdir()
    (catalog_dir / "keys" / "release.pub.pem").rename(catalog_dir / "teams" / "keys" / "release.pub.pem")
    path = catalog_dir / "teams" / "models.yaml"
    path.write_text(signed_catalog())
    monkeypatch.chdir(catalog_dir)  # keys/release.pub.pem does not exist here
    assert cli("validate", path).exit_code == 0


CROSS = [
    (
        "both-sources",
        signed_catalog(TRUST.replace("vault://transit/keys/release, min", "vault://t/keys/r, public_key: k.pem, min")),
        "trust.key-source",
        "vault: vault://t/keys/r",
        "trust key 'transit' names both a public_key and a vault key",
    ),
    (
        "no-source",
        signed_catalog(
            TRUST.replace("{name: transit, vault: vault://transit/keys/release, min_version: 2}", "{name: transit}")
        ),
        "trust.key-source",
        "name: transit}",
        "trust key 'transit' names neither a public_key nor a vault key",
    ),
    (
        "duplicate-key",
        signed_catalog(TRUST.replace("{name: transit,", "{name: release,")),
        "ref.duplicate-trust-key",
        "name: release, vault",
        "trust key 'release' is defined twice",
    ),
    (
        "unknown-environment",
        signed_catalog(TRUST + "    - {environment: prod, keys: [release]}\n"),
        "trust.unknown-environment",
        "environment: prod,",
        "environment 'prod' is not used by an application",
    ),
    (
        "environment-twice",
        signed_catalog(TRUST + "    - {environment: production, keys: [release]}\n"),
        "ref.duplicate-trust-environment",
        "environment: production, keys: [release]}",
        "trusted environment 'production' is defined twice",
    ),
    (
        "unknown-trusted-key",
        signed_catalog(TRUST.replace("keys: [release, transit]", "keys: [release, transi]")),
        "trust.unknown-key",
        "keys: [release, transi]",
        "environment 'production' trusts key 'transi', which trust.keys does not declare",
    ),
    (
        "bundle-unknown-key",
        signed_catalog(bundle=BUNDLE.replace("key: release", "key: relase")),
        "bundle.unknown-key",
        "key: relase",
        "fraud-scorer 1.0.0 is signed by key 'relase', which trust.keys does not declare",
    ),
    (
        "bundle-without-trust",
        signed_catalog(trust=""),
        "bundle.unknown-key",
        "key: release",
        "fraud-scorer 1.0.0 is signed by key 'release', which trust.keys does not declare",
    ),
    (
        "pem-key-version",
        signed_catalog(bundle=BUNDLE.replace("key_version: 1", "key_version: 3")),
        "bundle.key-version",
        "key_version: 3",
        "key 'release' is a PEM key, whose only version is 1, not 3",
    ),
    (
        "vault-key-version-zero",
        signed_catalog(bundle=BUNDLE.replace("key: release, key_version: 1", "key: transit, key_version: 0")),
        "schema.greater_than_equal",
        "key_version: 0",
        "",
    ),
    (
        "bundle-uri-not-by-digest",
        signed_catalog(bundle=BUNDLE.replace(f"artifacts/sha256/cc/{CC}", "artifacts/bundles/latest.json")),
        "artifact.mutable-reference",
        "uri: artifacts/bundles/latest.json",
        "does not name the signature bundle's digest",
    ),
    (
        "bundle-outside-stores",
        signed_catalog(
            TRUST + "stores:\n  - {name: artifacts, uri: artifacts, default: true}\n",
            BUNDLE.replace(f"artifacts/sha256/cc/{CC}", f"elsewhere/sha256/cc/{CC}"),
        ),
        "bundle.outside-stores",
        f"uri: elsewhere/sha256/cc/{CC}",
        f"'elsewhere/sha256/cc/{CC}' lies in none of the catalog's stores (artifacts (artifacts))",
    ),
]


@pytest.mark.parametrize(("text", "code", "anchor", "words"), [c[1:] for c in CROSS], ids=[c[0] for c in CROSS])
def test_trust_policy_problems_are_reported_with_line_and_exit_1(cli, catalog_dir: Path, text, code, anchor, words):
    path = catalog_dir / "models.yaml"
    path.write_text(text)
    problem = reported_problem(cli, path, code)
    assert words in problem["message"]
    assert problem["file"] == str(path)
    assert problem["line"] == line_of(text, anchor), problem
    assert problem["hint"]


def test_declared_environments_are_the_ones_trust_may_name(cli, catalog_dir: Path):
    text = signed_catalog().replace(
        "models:\n", "environments:\n  - {name: production}\n  - {name: staging}\nmodels:\n", 1
    )
    path = catalog_dir / "models.yaml"
    path.write_text(
        text.replace(
            "    - {environment: production,",
            "    - {environment: staging, keys: [release]}\n    - {environment: production,",
        )
    )
    report = validate_file(path)
    assert [p.code for p in report.errors] == [], report.errors
    path.write_text(text.replace("{environment: production,", "{environment: qa,"))
    [problem] = validate_file(path).errors
    assert problem.code == "trust.unknown-environment"
    assert problem.message == "environment 'qa' is not declared under 'environments:'"


def test_every_trust_problem_is_reported_at_once_beside_a_schema_error(cli, tmp_path: Path):
    """A missing key file, an unknown key, a key with two sources and a schema error elsewhere: all
    four in one run; a bundle naming a key that failed the schema is not reported as unknown."""
    text = signed_catalog(
        TRUST.replace("keys: [release, transit]", "keys: [release, transit, nokey]")
        + "    - {environment: production, keys: [release]}\n"
        + "  # a key that fails the schema\n",
    ).replace("enabled: true", "enabled: no")
    text = text.replace("    - {name: transit,", "    - {name: broken, vault: http://x}\n    - {name: transit,")
    text = text.replace("key: release, key_version: 1", "key: broken, key_version: 1")
    path = tmp_path / "models.yaml"
    path.write_text(text)
    before = path.read_bytes()
    result = cli("validate", path, "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    codes = sorted(p["code"] for p in document["problems"])
    assert codes == [
        "ref.duplicate-trust-environment",
        "schema.bool_type",
        "schema.string_pattern_mismatch",
        "trust.key-file",
        "trust.unknown-key",
    ], codes
    assert all(p["line"] > 0 for p in document["problems"])
    assert path.read_bytes() == before
