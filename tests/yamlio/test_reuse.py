"""Validating a revision by reusing the models another revision has in the same words
(catalog.yamlio.reuse, catalog.validate.validate_bytes_reusing): always the full parse's report."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from catalog.domain.models import Catalog
from catalog.validate import validate_bytes, validate_bytes_reusing
from catalog.yamlio.reuse import Reused, parse_reusing, split_models
from tests.helpers import DEMO

HEAD = DEMO.read_text(encoding="utf-8")
LAYOUT = split_models(HEAD)
assert LAYOUT is not None
FRAUD, RECOMMENDER, CHURN, RANKER = LAYOUT.items
NEW_MODEL = RANKER.replace("name: search-ranker", "name: search-ranker-two")


def _head() -> Catalog:
    catalog = validate_bytes(HEAD.encode(), "models.yaml").catalog
    assert catalog is not None
    return catalog


def _fields_set(value: object) -> object:
    """Every model's fields_set, recursively (what `==` on pydantic models does not compare)."""
    if isinstance(value, BaseModel):
        return (
            sorted(value.model_fields_set),
            {name: _fields_set(getattr(value, name)) for name in type(value).model_fields},
        )
    if isinstance(value, list | tuple):
        return [_fields_set(v) for v in value]
    if isinstance(value, dict):
        return {k: _fields_set(v) for k, v in value.items()}
    return None


def _same_as_full(base: str, *, reused: int | None) -> None:
    """The reusing report equals the full one; ``reused``: how many models the fast path takes from
    the head (None: it must fall back to the full parse)."""
    head = _head()
    full = validate_bytes(base.encode(), "models.yaml@base")
    fast = validate_bytes_reusing(base.encode(), "models.yaml@base", HEAD, head)
    assert fast.problems == full.problems
    assert fast.catalog == full.catalog
    if full.catalog is not None:
        assert fast.catalog is not None
        assert fast.catalog.model_dump(mode="json") == full.catalog.model_dump(mode="json")
        assert _fields_set(fast.catalog) == _fields_set(full.catalog)
    document = parse_reusing(base, "models.yaml@base", HEAD, len(head.models))
    if reused is None:
        assert document is None
    else:
        assert document is not None
        items = document["models"]
        assert isinstance(items, list)
        assert sum(isinstance(m, Reused) for m in items) == reused
        if full.catalog is not None:  # taken from the head only when nothing at all is reported
            assert fast.catalog is not None
            shared = [m for m in fast.catalog.models if any(m is h for h in head.models)]
            assert len(shared) == (reused if not full.problems else 0)


def _with_models(*items: str) -> str:
    assert LAYOUT is not None
    return LAYOUT.before + "models:\n" + "".join(items) + LAYOUT.after


def test_split_models_cuts_the_demo_into_its_four_models() -> None:
    assert LAYOUT is not None
    assert [item.splitlines()[0] for item in LAYOUT.items] == [
        "  - name: fraud-scorer",
        "  - name: recommender",
        "  - name: churn-predictor",
        "  - name: search-ranker",
    ]
    assert LAYOUT.after.startswith("applications:\n")
    assert _with_models(*LAYOUT.items) == HEAD.replace(
        HEAD[len(LAYOUT.before) : HEAD.index("\n", len(LAYOUT.before))], "models:"
    )


def test_identical_text_reuses_every_model() -> None:
    _same_as_full(HEAD, reused=4)


def test_one_model_changed() -> None:
    changed = FRAUD.replace("auc: 0.917", "auc: 0.919")
    _same_as_full(_with_models(changed, RECOMMENDER, CHURN, RANKER), reused=3)


def test_a_model_added() -> None:
    _same_as_full(_with_models(FRAUD, RECOMMENDER, CHURN, RANKER, NEW_MODEL), reused=4)


def test_a_model_removed() -> None:
    assert LAYOUT is not None
    rebound = LAYOUT.after.replace("model: churn-predictor", "model: search-ranker").replace(
        "{version: 1.1.0, weight: 100}", "{version: 3.2.0, weight: 100}"
    )
    base = LAYOUT.before + "models:\n" + FRAUD + RECOMMENDER + RANKER + rebound
    assert validate_bytes(base.encode(), "b").problems == []
    _same_as_full(base, reused=3)
    app = LAYOUT.after.index("  - name: retention-campaigns")
    without = LAYOUT.before + "models:\n" + FRAUD + RECOMMENDER + RANKER + LAYOUT.after[:app].rstrip() + "\n"
    assert [p.code for p in validate_bytes(without.encode(), "b").problems] == ["env.unused"]  # a warning
    _same_as_full(without, reused=3)  # anything reported: the full parse's report, positions and all


def test_a_removed_model_still_bound_is_the_full_reports_error() -> None:
    base = _with_models(FRAUD, RECOMMENDER, RANKER)
    assert not validate_bytes(base.encode(), "b").ok
    _same_as_full(base, reused=3)


def test_reordered_models() -> None:
    _same_as_full(_with_models(RANKER, CHURN, FRAUD, RECOMMENDER), reused=4)


def test_comments_and_blank_lines() -> None:
    commented = FRAUD.replace("    task: classification\n", "    task: classification # reviewed\n")
    base = _with_models(commented, RECOMMENDER, CHURN, RANKER)
    _same_as_full(base, reused=3)
    lead = base.replace("models:\n", "models:\n# the models, by team\n\n", 1)
    _same_as_full(lead, reused=3)


def test_items_flush_with_the_models_key() -> None:
    def flush(item: str) -> str:
        return "".join(line.removeprefix("  ") for line in item.splitlines(keepends=True))

    base = _with_models(*(flush(i) for i in (FRAUD, RECOMMENDER, CHURN, RANKER)))
    assert validate_bytes(base.encode(), "b").ok
    _same_as_full(base, reused=0)  # no item is written as in the head


def test_an_invalid_changed_model_gives_the_full_reports_problems() -> None:
    broken = RECOMMENDER.replace("task: recommendation", "task: astrology")
    _same_as_full(_with_models(FRAUD, broken, CHURN, RANKER), reused=3)  # parsed apart; the schema fails: in full


def test_a_duplicate_of_a_reused_model_is_reported_as_in_full() -> None:
    twice = RANKER.replace("  - name: search-ranker\n", "  - name: search-ranker\n    labels: {copy: 'yes'}\n")
    _same_as_full(_with_models(FRAUD, RECOMMENDER, CHURN, RANKER, twice), reused=4)


def test_a_yaml_error_in_a_changed_model() -> None:
    broken = FRAUD.replace("    task: classification\n", "    task: [classification\n")
    _same_as_full(_with_models(broken, RECOMMENDER, CHURN, RANKER), reused=None)


@pytest.mark.parametrize(
    "edit",
    [
        # flow style: no block items to cut
        lambda t: t.replace("models:\n" + FRAUD + RECOMMENDER + CHURN + RANKER, "models: []\n"),
        # an anchor in one model and an alias to it in another
        lambda t: t.replace("owner: risk-ml@example.com", "owner: &risk risk-ml@example.com").replace(
            "owner: personalisation@example.com", "owner: *risk"
        ),
        # a merge key
        lambda t: t.replace("    task: classification\n", "    <<: {task: classification}\n", 1),
        # two models keys (YAML's duplicate key)
        lambda t: t + "models: []\n",
    ],
)
def test_layouts_that_fall_back_to_the_full_parse(edit) -> None:
    base = edit(HEAD)
    assert base != HEAD
    _same_as_full(base, reused=None)


def test_a_flow_style_models_list_falls_back() -> None:
    head = _head()
    flow = (
        (LAYOUT.before if LAYOUT else "")
        + "models: [{name: m, owner: o, task: other, versions: []}]\n"
        + (LAYOUT.after if LAYOUT else "")
    )
    assert split_models(flow) is None
    assert parse_reusing(flow, "b", HEAD, len(head.models)) is None
    _same_as_full(flow, reused=None)


def test_a_known_text_that_does_not_split_as_its_catalog_falls_back() -> None:
    head = _head()
    assert parse_reusing(HEAD, "b", HEAD, len(head.models) + 1) is None
