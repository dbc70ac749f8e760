"""Vault references split into the mount and the path Vault's API takes (catalog.domain.vault_refs)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from catalog.domain.models import SecretRef, TrustedKey
from catalog.domain.vault_refs import KvRef, TransitRef, is_vault_ref, parse_kv_ref, parse_transit_ref


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("vault://transit/keys/release", TransitRef("transit", "release")),
        ("vault://team/transit/keys/release-2", TransitRef("team/transit", "release-2")),
        ("vault://a/keys/b/keys/c", TransitRef("a/keys/b", "c")),  # the last /keys/ names the key
    ],
)
def test_a_transit_ref_is_its_mount_and_key_name(ref: str, expected: TransitRef) -> None:
    assert parse_transit_ref(ref) == expected
    assert str(expected) == ref


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("vault://secret/checkout/token", KvRef("secret", "checkout/token")),
        ("vault://kv/one", KvRef("kv", "one")),
    ],
)
def test_a_kv_ref_is_its_first_segment_as_mount_and_the_rest_as_path(ref: str, expected: KvRef) -> None:
    assert parse_kv_ref(ref) == expected
    assert str(expected) == ref


@pytest.mark.parametrize(
    "ref",
    ["transit/keys/x", "vault://transit/x", "vault://keys/", "vault://transit/keys/", "vault://t/keys/a b", ""],
)
def test_a_malformed_transit_ref_says_which_form_is_expected(ref: str) -> None:
    with pytest.raises(ValueError, match="vault://MOUNT/keys/NAME"):
        parse_transit_ref(ref)


@pytest.mark.parametrize("ref", ["secret/x", "vault://secret", "vault://secret/", "vault:///x", "vault://s/a?b"])
def test_a_malformed_kv_ref_says_which_form_is_expected(ref: str) -> None:
    with pytest.raises(ValueError, match="vault://MOUNT/PATH"):
        parse_kv_ref(ref)


@pytest.mark.parametrize("ref", ["vault://secret/../other", "vault://secret/./x", "vault://../keys/k"])
def test_a_dot_segment_is_refused_as_vault_would_resolve_it_elsewhere(ref: str) -> None:
    parse = parse_transit_ref if "/keys/" in ref else parse_kv_ref
    with pytest.raises(ValueError, match=r"'\.' or '\.\.' segment"):
        parse(ref)


def test_is_vault_ref_is_the_scheme_only() -> None:
    assert is_vault_ref("vault://anything")
    assert not is_vault_ref("keys/release.pem")


@pytest.mark.parametrize(
    ("model", "field", "ref"),
    [
        (SecretRef, "vault", "vault://secret/../other"),
        (SecretRef, "vault", "vault://secret/./x"),
        (TrustedKey, "vault", "vault://../keys/k"),
        (TrustedKey, "vault", "vault://transit/keys/.."),
    ],
)
def test_the_catalog_schema_refuses_a_dot_segment_too(model: type[BaseModel], field: str, ref: str) -> None:
    """validate reports it with its line, before any command parses the reference."""
    with pytest.raises(ValidationError, match=field):
        model.model_validate({"name": "k", field: ref})
