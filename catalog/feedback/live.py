"""Live metrics: the label events joined to the predictions the router recorded, per version, in SQL.

Run by ``catalog.feedback.warehouse`` over its views (``binding``: this binding's assignments in the
period; ``joined``: the events with how they joined). The rules (docs/analysis.md, "Live metrics"):

- A label event attributed by ``request_id`` labels that request's prediction. One attributed by
  unit labels the unit's latest prediction at or before the event's time (the window rule of the
  other outcomes decides whether it is attributed at all).
- A prediction is counted for the version that made it, once, with the label capped at 1 (several
  events on one request: labelled 1 if any says 1). Predictions without a label are left out, and so
  are labels whose request or unit has no recorded prediction (a failed request, or logged before
  the router recorded predictions).
- AUC is the Mann-Whitney statistic: the chance that a prediction labelled 1 scores above one
  labelled 0, ties counting a half (average ranks). Accuracy is the share of predictions equal to
  their label. No labelled prediction gives no value (None, never 0), and neither does an AUC whose
  labels are all of one class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from catalog.analysis.data import LiveMetric
from catalog.domain.live_metrics import LiveMetricName

__all__ = ["live_metrics_sql"]

Sql = Callable[[str, str], list[tuple[Any, ...]]]


def _names(labels: Iterable[str]) -> str:
    return ", ".join("'" + name.replace("'", "''") + "'" for name in labels)


def live_metrics_sql(
    sql: Sql, unit: str, metric: LiveMetricName, labels: Iterable[str]
) -> dict[str, dict[str, LiveMetric]]:
    """Per version, per label outcome, its ``metric``: ``sql(name, text)`` runs a statement over the
    warehouse's views; ``unit`` is the expression of an assignment's unit key."""
    names = _names(labels)
    if not names:
        return {}
    sql(
        "live predictions",
        f"""
CREATE TEMP TABLE live_pairs AS
WITH predicted AS (
  SELECT request_key AS request, {unit} AS unit, version, time, prediction FROM binding
  WHERE prediction IS NOT NULL
),
labels AS (
  SELECT outcome, request, unit, time, value FROM joined WHERE joined = 'attributed' AND outcome IN ({names})
),
by_request AS (
  SELECT l.outcome, p.request, p.version, p.prediction, l.value
  FROM labels l JOIN predicted p ON p.request = l.request
),
by_unit AS (
  SELECT l.outcome, p.request, p.version, p.prediction, l.value
  FROM (SELECT * FROM labels WHERE request IS NULL) l
  ASOF JOIN predicted p ON l.unit = p.unit AND l.time >= p.time
)
SELECT version, outcome, request, any_value(prediction) AS prediction, least(max(value), 1) AS label
FROM (SELECT * FROM by_request UNION ALL SELECT * FROM by_unit)
GROUP BY version, outcome, request""",
    )
    rows = sql(
        "live metrics",
        """
SELECT version, outcome, count(*), CAST(sum(label) AS BIGINT),
       sum(rank) FILTER (WHERE label = 1), avg(CASE WHEN prediction = label THEN 1.0 ELSE 0.0 END)
FROM (
  SELECT *, rank() OVER (PARTITION BY version, outcome ORDER BY prediction)
            + (count(*) OVER (PARTITION BY version, outcome, prediction) - 1) / 2.0 AS rank
  FROM live_pairs
)
GROUP BY version, outcome""",
    )
    found: dict[str, dict[str, LiveMetric]] = {}
    for version, outcome, n, positives, rank_sum, accuracy in rows:
        negatives = n - positives
        if metric == "accuracy":
            value = float(accuracy)
        elif positives and negatives:
            value = (float(rank_sum) - positives * (positives + 1) / 2) / (positives * negatives)
        else:
            value = None
        found.setdefault(str(version), {})[str(outcome)] = LiveMetric(metric, value, int(n), int(positives))
    return found
