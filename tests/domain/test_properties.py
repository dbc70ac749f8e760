"""Property tests: weights, and catalogs generated at random sizes."""

from __future__ import annotations

import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.validate import validate_bytes
from tests.helpers import MINIMAL, ROOT

sys.path.insert(0, str(ROOT / "bench"))
from catalog_gen import generate

ROUTES = "          - {version: 1.0.0, weight: 90}\n          - {version: 1.1.0, weight: 10}\n"


@settings(max_examples=120, deadline=None)
@given(st.integers(-50, 150), st.integers(-50, 150))
def test_weights_are_accepted_exactly_when_in_range_and_summing_to_100(a, b):
    text = MINIMAL.replace(
        ROUTES, f"          - {{version: 1.0.0, weight: {a}}}\n          - {{version: 1.1.0, weight: {b}}}\n"
    )
    report = validate_bytes(text.encode(), "m.yaml")
    in_range = 0 <= a <= 100 and 0 <= b <= 100
    assert report.ok == (in_range and a + b == 100)
    codes = {p.code for p in report.errors}
    assert ("binding.weights" in codes) == (in_range and a + b != 100)
    assert ("schema.greater_than_equal" in codes or "schema.less_than_equal" in codes) == (not in_range)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 30).map(lambda n: n * 10))
def test_generated_catalogs_are_valid(versions):
    report = validate_bytes(generate(versions).encode(), "gen.yaml")
    assert report.ok, report.problems[:3]
    assert sum(len(m.versions) for m in report.catalog.models) == versions
