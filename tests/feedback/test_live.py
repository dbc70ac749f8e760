"""Live metrics: label events joined to the recorded predictions, per version (AUC, accuracy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from catalog.analysis.data import LiveMetric
from catalog.feedback.warehouse import live_metrics, observe
from tests.feedback.helpers import assignment, at, event, write_records

LABELS = {"is_fraud": "label", "conversion": "proportion"}


def scored(request_id: str, version: str, time: str, unit: str, prediction: float | None, **kw: Any) -> dict:
    return assignment(request_id, version, time, unit, **kw) | {"prediction": prediction}


# Version A's labelled predictions: 1 -> 0.9, 0.3, 0.6 (u7's prediction before its label), 0 -> 0.3, 0.1.
# Ranks 1 (0.1), 2.5 and 2.5 (the tie at 0.3), 4 (0.6), 5 (0.9): the positives' sum 11.5, so
# AUC = (11.5 - 3 * 4 / 2) / (3 * 2) = 5.5 / 6 (the pair 0.3/0.3 counts a half).
AUC_A = 5.5 / 6
ASSIGNMENTS = [
    scored("a1", "A", at(0), "u1", 0.9),
    scored("a2", "A", at(0), "u2", 0.3),
    scored("a3", "A", at(0), "u3", 0.3),
    scored("a4", "A", at(0), "u4", 0.1),
    scored("a5", "A", at(0), "u5", 0.8),  # never labelled: left out
    scored("a6", "A", at(0), "u6", None, status=500),  # failed: no prediction, its label is left out
    scored("a7", "A", at(0), "u7", 0.6),
    scored("a7b", "A", at(2), "u7", 0.2),  # after u7's label: not the one it labels
    scored("b1", "B", at(0), "v1", 0.7),  # B's predictions get no label
    scored("c1", "C", at(0), "w1", 0.4),
    scored("c2", "C", at(0), "w2", 0.5),
]
EVENTS = [
    event("l1", "is_fraud", 1, at(24), request_id="a1", received=at(days=4)),  # late (a chargeback): attributed
    event("l1", "is_fraud", 0, at(24), request_id="a1", received=at(days=5)),  # its duplicate: counted once
    event("l2", "is_fraud", 0, at(24), request_id="a2"),
    event("l3", "is_fraud", 1, at(24), request_id="a3"),
    event("l4", "is_fraud", 0, at(24), request_id="a4"),
    event("l6", "is_fraud", 1, at(24), request_id="a6"),
    event("l7", "is_fraud", 1, at(1), unit="u7", received=at(days=3)),  # by unit, within the window
    event("l8", "is_fraud", 1, at(100), unit="u5"),  # 100 h after u5's assignment: out of the window
    event("l9", "is_fraud", 1, at(24), request_id="c1"),
    event("l10", "is_fraud", 1, at(24), request_id="c2"),  # C's labels are all 1: no AUC
    event("k1", "conversion", 1, at(1), request_id="b1"),  # not a label
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("analytics")
    write_records(root, "assignments", ASSIGNMENTS).close()
    write_records(root, "outcomes", EVENTS, day_of="received").close()
    return root


def _arms(root: Path, **kw: Any) -> dict[str, dict[str, LiveMetric]]:
    seen = observe(root, "shop", "rec", until=at(days=10), outcomes=LABELS, **kw)
    return {arm.version: dict(arm.live_metrics) for arm in seen.arms}


def test_auc_is_the_mann_whitney_statistic_with_ties_counting_a_half(root: Path) -> None:
    (a,) = _arms(root, live_metric="auc")["A"].values()
    assert a.name == "auc" and a.value == pytest.approx(AUC_A)
    assert (a.n, a.positives) == (5, 3)  # a5 unlabelled, a6 without a prediction, u5's label out of window


def test_no_label_gives_no_value_never_zero(root: Path) -> None:
    arms = _arms(root, live_metric="auc")
    assert arms["B"] == {"is_fraud": LiveMetric("auc", None, 0)}
    assert arms["C"] == {"is_fraud": LiveMetric("auc", None, 2, 2)}  # one class only: no AUC


def test_accuracy_is_the_share_of_classes_equal_to_their_label(tmp_path: Path) -> None:
    write_records(
        tmp_path,
        "assignments",
        [scored("r1", "A", at(0), "u1", 1), scored("r2", "A", at(0), "u2", 0), scored("r3", "A", at(0), "u3", 1)],
    ).close()
    labels = [event(f"e{i}", "is_fraud", 1, at(5), request_id=f"r{i}") for i in (1, 2, 3)]
    write_records(tmp_path, "outcomes", [*labels, event("e4", "is_fraud", 0, at(5), request_id="r3")]).close()
    (metric,) = _arms(tmp_path, live_metric="accuracy")["A"].values()
    assert metric == LiveMetric("accuracy", pytest.approx(2 / 3), 3, 3)  # r3: 1 if any label says 1


def test_without_a_live_metric_asked_the_arms_have_none(root: Path) -> None:
    assert all(metrics == {} for metrics in _arms(root).values())


def test_live_metrics_alone_answer_the_same_for_show(root: Path) -> None:
    found = live_metrics(root, "shop", "rec", "auc", ["is_fraud"])
    assert found["A"]["is_fraud"].value == pytest.approx(AUC_A) and found["A"]["is_fraud"].n == 5
    assert "B" not in found  # no labelled prediction: nothing to show


def test_segments_written_before_predictions_were_recorded_are_still_read(tmp_path: Path) -> None:
    old = [assignment("o1", "A", at(0), "u1"), assignment("o2", "A", at(0), "u2")]
    write_records(tmp_path, "assignments", old).close()
    (parquet,) = tmp_path.glob("assignments/*/*/*.parquet")
    without = parquet.with_name("old.parquet")  # as written before the prediction column existed
    duckdb.execute(f"COPY (SELECT * EXCLUDE (prediction) FROM '{parquet}') TO '{without}' (FORMAT parquet)")
    parquet.unlink()
    only_old = observe(tmp_path, "shop", "rec", until=at(days=1), outcomes=LABELS, live_metric="accuracy")
    assert only_old.arms[0].requests == 2 and only_old.arms[0].live_metrics["is_fraud"].n == 0
    write_records(tmp_path, "assignments", [scored("n1", "A", at(1), "u3", 0.8)]).close()
    labels = [event("e1", "is_fraud", 1, at(5), request_id="o1"), event("e2", "is_fraud", 1, at(5), request_id="n1")]
    write_records(tmp_path, "outcomes", labels).close()
    seen = observe(tmp_path, "shop", "rec", until=at(days=1), outcomes=LABELS, live_metric="accuracy")
    (arm,) = seen.arms
    assert arm.requests == 3
    assert arm.live_metrics["is_fraud"] == LiveMetric("accuracy", 0.0, 1, 1)  # o1 has no prediction: left out
