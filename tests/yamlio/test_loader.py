"""The fast reader: YAML 1.2 core scalars, no silent coercions, positions on demand."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.validate import validate_bytes
from catalog.yamlio.loader import parse
from catalog.yamlio.positions import locate


@pytest.mark.parametrize(
    ("scalar", "value"),
    [
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("true", True),
        ("False", False),
        ("1.10", 1.1),
        ("1.10.0", "1.10.0"),
        ("010", 10),
        ("0o17", 15),
        ("0x1f", 31),
        ("1_000", "1_000"),
        ("2026-01-01", "2026-01-01"),
        ("~", None),
        ("null", None),
        ("", None),
        ("'1.10'", "1.10"),
        ('"true"', "true"),
        ("!!str 1.10", "1.10"),
        ("1e3", 1000.0),
        ("-.5", -0.5),
        (".inf", math.inf),
        ("12:30", "12:30"),
        ("0b101", "0b101"),
    ],
)
def test_scalars_resolve_by_yaml_1_2_core(scalar, value):
    result = parse(f"k: {scalar}\n", "t.yaml")
    assert result.problems == []
    assert result.data["k"] == value and type(result.data["k"]) is type(value)


def test_nan_is_read_and_then_refused_by_the_schema(write):
    from tests.helpers import MINIMAL

    report = validate_bytes(MINIMAL.replace("auc: 0.91", "auc: .nan").encode(), "m.yaml")
    assert [p.code for p in report.errors] == ["schema.finite_number"]


@pytest.mark.parametrize(
    "text",
    [
        "k: [a, b]\n",
        "k: {a: 1}\n",
        "- 1\n- [2, {x: y}]\n",
        "a: &x {b: 1}\nc: *x\n",
        "a: &s 1.5\nb: [*s, *s, {c: *s}]\nd: &l [&t true, *t]\ne: *l\n",
    ],
)
def test_plain_structures_match_pyyaml(text):
    assert parse(text, "t.yaml").data == yaml.safe_load(text)


def test_an_aliased_scalar_with_a_refused_tag_is_reported_once():
    result = parse("a: &t !!binary aGVsbG8=\nb: [*t, *t]\n", "t.yaml")
    assert [(p.code, p.line) for p in result.problems] == [("yaml.unsafe-tag", 1)]


def test_duplicate_keys_are_all_reported():
    result = parse("a: 1\nb: 2\na: 3\nb: 4\n", "t.yaml")
    assert [(p.code, p.line, p.column) for p in result.problems] == [
        ("yaml.duplicate-key", 3, 1),
        ("yaml.duplicate-key", 4, 1),
    ]


def test_merge_explicit_keys_win_and_earlier_sources_win():
    result = parse("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  x: 0\n", "t.yaml")
    assert result.problems == []
    assert result.data["c"] == {"x": 0, "y": 1, "z": 2}


def test_positions_follow_paths_into_merges_and_flow_collections():
    text = "base: &b {replicas: 1}\napps:\n  - name: a\n    serving:\n      <<: *b\n    routes: [{version: 1.0.0, weight: 5}]\n"
    found = locate(text, [("apps", 0, "routes", 0, "weight"), ("apps", 0, "serving", "replicas"), ("apps", 0, "nope")])
    weight = found[("apps", 0, "routes", 0, "weight")]
    assert (weight.line, weight.column, weight.source, weight.found) == (6, 39, "5", True)
    assert found[("apps", 0, "serving", "replicas")].line == 1  # it lives in the anchor
    missing = found[("apps", 0, "nope")]
    assert not missing.found and missing.line == 3  # the parent item


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_any_text_gives_a_report_never_an_exception(text):
    report = validate_bytes(text.encode("utf-8"), "fuzz.yaml")
    assert report.catalog is None or report.ok
    assert all(p.file == "fuzz.yaml" for p in report.problems)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_report_never_an_exception(data):
    report = validate_bytes(data, "fuzz.yaml")
    assert not report.ok or report.catalog is not None
