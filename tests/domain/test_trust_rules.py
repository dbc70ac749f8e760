"""The trust policy's pure rules (catalog.domain.trust_rules): the cross-references validate reports
(no file is read here)."""

from __future__ import annotations

import yaml

from catalog.domain.models import Catalog
from catalog.domain.rules import check_catalog
from catalog.domain.trust_rules import check_trust
from tests.test_trust_policy import BUNDLE, TRUST, signed_catalog


def _catalog(text: str) -> Catalog:
    return Catalog.model_validate(yaml.safe_load(text))


def test_a_valid_trust_policy_has_no_problem():
    assert list(check_trust(_catalog(signed_catalog()))) == []
    assert check_catalog(_catalog(signed_catalog())) == []


def test_a_key_that_failed_the_schema_is_not_called_unknown():
    text = signed_catalog(bundle=BUNDLE.replace("key: release", "key: broken"))
    catalog = _catalog(text)
    assert [p.code for p in check_trust(catalog)] == ["bundle.unknown-key"]
    assert list(check_trust(catalog, unchecked_keys=frozenset({"broken"}))) == []


def test_an_environment_that_failed_the_schema_is_not_called_unknown():
    text = signed_catalog(TRUST + "    - {environment: qa, keys: [release]}\n").replace(
        "models:\n", "environments:\n  - {name: production}\nmodels:\n", 1
    )
    catalog = _catalog(text)
    assert [p.loc for p in check_trust(catalog)] == [("trust", "environments", 1, "environment")]
    assert list(check_trust(catalog, unchecked_environments=frozenset({"qa"}))) == []


def test_a_bundle_in_a_file_store_lies_in_it():
    hexdigest = "c" * 64
    text = signed_catalog(
        TRUST + "stores:\n  - {name: shared, uri: 'file:///srv/models', default: true}\n",
        BUNDLE.replace(f"artifacts/sha256/cc/{hexdigest}", f"file:///srv/models/sha256/cc/{hexdigest}"),
    )
    codes = [p.code for p in check_catalog(_catalog(text))]
    # the artifacts lie outside the file store; the bundle lies in it
    assert "bundle.outside-stores" not in codes and codes.count("artifact.outside-stores") == 2
