"""The trust policy: which keys an environment trusts (pure), and those keys loaded from the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.domain.models import Catalog
from catalog.domain.trust import environment_keys
from catalog.errors import SigningError
from catalog.signing.keys import key_hint
from catalog.signing.trust import trusted_keys
from catalog.validate import validate_bytes
from tests.helpers import MINIMAL
from tests.signing.keyfiles import with_trust, write_key

KEYS = """\
    - {name: release, public_key: keys/release.pub.pem}
    - {name: old, public_key: keys/old.pub.pem, min_version: 2}
    - {name: ci, public_key: keys/ci.pub.pem}
"""
ENVIRONMENTS = """\
    - {environment: production, keys: [release, old]}
    - {environment: staging, require_signatures: false, keys: [ci]}
"""


def catalog_of(text: str) -> Catalog:
    catalog = validate_bytes(text.encode(), "models.yaml").catalog
    assert catalog is not None
    return catalog


@pytest.fixture
def catalog() -> Catalog:
    # staging is declared: a trust rule may name only an environment that exists
    declared = MINIMAL.replace(
        "\nmodels:\n", "\nenvironments:\n  - {name: production}\n  - {name: staging}\nmodels:\n", 1
    )
    return catalog_of(with_trust(declared, KEYS, ENVIRONMENTS))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in ("release", "old", "ci"):
        write_key(tmp_path / "keys", name)
    return tmp_path


def test_an_environment_trusts_the_keys_its_rule_names(catalog: Catalog) -> None:
    production = environment_keys(catalog, "production")
    assert production.required and [k.name for k in production.keys] == ["release", "old"]
    staging = environment_keys(catalog, "staging")
    assert not staging.required and [k.name for k in staging.keys] == ["ci"]


def test_an_environment_without_a_rule_requires_nothing_and_counts_every_key(catalog: Catalog) -> None:
    for environment in ("dev", None):
        rule = environment_keys(catalog, environment)
        assert not rule.required and [k.name for k in rule.keys] == ["release", "old", "ci"]


def test_a_catalog_without_trust_trusts_nothing() -> None:
    rule = environment_keys(catalog_of(MINIMAL), "production")
    assert not rule.required and rule.keys == ()


def test_pem_keys_are_read_from_the_repository_and_a_version_below_min_version_is_revoked(
    catalog: Catalog, root: Path
) -> None:
    trusted = trusted_keys(catalog, "production", root)
    assert trusted.required
    assert [(k.name, k.version) for k in trusted.keys] == [("release", 1)]
    assert [(k.name, k.version) for k in trusted.revoked] == [("old", 1)]
    pem = (root / "keys" / "release.pub.pem").read_bytes()
    assert trusted.keys[0].pem == pem and trusted.keys[0].hint == key_hint(pem)


def test_a_missing_pem_names_the_trust_key_and_the_file(catalog: Catalog, root: Path) -> None:
    (root / "keys" / "ci.pub.pem").unlink()
    with pytest.raises(SigningError, match=r"trust key ci: cannot read .*ci\.pub\.pem"):
        trusted_keys(catalog, "staging", root)


def test_an_rsa_public_key_in_the_policy_is_refused(catalog: Catalog, root: Path) -> None:
    write_key(root / "keys", "ci", rsa_bits=2048)
    with pytest.raises(SigningError, match="trust key ci .*public key of type RSA"):
        trusted_keys(catalog, "staging", root)
