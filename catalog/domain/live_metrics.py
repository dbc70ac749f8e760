"""Live metrics: how accurate each served version is on the labels its application reports back. Pure.

An application that declares a ``label`` outcome (e.g. checkout's ``is_fraud``, a chargeback days
later) gets a live metric for each bound model whose routed versions each have one output with one
value per row (shape ``[batch]`` or ``[batch, 1]``): AUC when that output is a floating-point score,
accuracy when it is an integer or boolean class. Nothing is declared beyond the label: the metric is
derived from the versions' signatures. The router of such an application records the first element of
the response's first output with each answered request; ``catalog.feedback.live`` joins the labels to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from catalog.domain.effective import semver_key
from catalog.domain.models import Application, Binding, Catalog, Version
from catalog.domain.problems import Loc, Problem

__all__ = ["LiveMetric", "LiveMetricName", "check_live_metric", "has_labels", "live_metric", "prediction_metric"]

LiveMetricName = Literal["auc", "accuracy"]


@dataclass(frozen=True)
class LiveMetric:
    """How accurate a version is on a label outcome, over its predictions that got a label
    (docs/analysis.md, "Live metrics"): the AUC of its scores or the accuracy of its classes."""

    name: LiveMetricName
    value: float | None  # None: no labelled prediction (never 0), or an AUC with labels of one class only
    n: int  # labelled predictions
    positives: int = 0  # of which labelled 1

    def describe(self, label: str) -> str:
        """``is_fraud: auc=0.903 (n=1840)``; ``auc=-`` without a value."""
        return f"{label}: {self.name}={'-' if self.value is None else f'{self.value:.4g}'} (n={self.n})"


SCORE_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
CLASS_DTYPES = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"},
)


def has_labels(app: Application) -> bool:
    """Whether ``app`` declares a label outcome (its routers then record predictions)."""
    return any(outcome.kind == "label" for outcome in app.outcomes)


def prediction_metric(version: Version) -> tuple[LiveMetricName | None, str]:
    """The live metric ``version``'s prediction can give (``auc`` for a score, ``accuracy`` for a
    class), or None and why not."""
    outputs = version.signature.outputs
    if len(outputs) != 1:
        return None, f"it has {len(outputs)} outputs"
    output = outputs[0]
    if not output.shape or any(dim != 1 for dim in output.shape[1:]):
        shape = ", ".join(str(dim) for dim in output.shape)
        return None, f"its output {output.name!r} has shape [{shape}], not one value per row"
    if output.dtype in SCORE_DTYPES:
        return "auc", ""
    if output.dtype in CLASS_DTYPES:
        return "accuracy", ""
    return None, f"its output {output.name!r} is {output.dtype}, neither a number nor a class"


def _routed_versions(catalog: Catalog, binding: Binding) -> list[tuple[int, Version]]:
    """(route index, version) of each route whose version the catalog has (a catalog being validated
    holds None where a model or a version failed its schema: those are left out)."""
    model = next((m for m in catalog.models if m is not None and m.name == binding.model), None)
    versions = {semver_key(v.version): v for v in model.versions if v is not None} if model else {}
    found = ((r, versions.get(semver_key(route.version))) for r, route in enumerate(binding.routes))
    return [(r, version) for r, version in found if version is not None]


def live_metric(catalog: Catalog, app: Application, binding: Binding) -> LiveMetricName | None:
    """The live metric of ``binding``'s versions (which share their outputs' signature): None when
    ``app`` declares no label, or when they cannot give one (``check_live_metric`` warns why)."""
    if not has_labels(app):
        return None
    metrics = {prediction_metric(version)[0] for _, version in _routed_versions(catalog, binding)}
    return metrics.pop() if len(metrics) == 1 else None


def check_live_metric(catalog: Catalog, loc: Loc, app: Application, binding: Binding) -> Iterator[Problem]:
    """A warning at the first route (``loc`` is the binding's) of an application with a label outcome
    whose version cannot be given a live metric (the routed versions share their outputs' signature)."""
    if not has_labels(app):
        return
    label = next(outcome.name for outcome in app.outcomes if outcome.kind == "label")
    for r, version in _routed_versions(catalog, binding):
        metric, why = prediction_metric(version)
        if metric is None:
            yield Problem(
                "outcome.no-live-metric",
                f"{binding.model} {version.version} gets no live metric on label {label!r}: {why}",
                loc=(*loc, "routes", r, "version"),
                hint="a live metric (AUC or accuracy) needs one output with one value per row, a score or a class",
                severity="warning",
            )
            return
