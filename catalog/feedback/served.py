"""The live metrics of the versions a catalog serves, read from their stacks' logs (``modelcat show``).

Only applications that declare a label outcome and whose local stack has logged assignments are
read (DuckDB is not even loaded otherwise): with no stack applied, the views are returned as they are,
and logs that cannot be read are logged as a warning, never a failure of ``show``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from catalog.domain.effective import effective_analysis
from catalog.domain.live_metrics import has_labels, live_metric
from catalog.domain.models import Application, Catalog
from catalog.domain.views import ApplicationView, BindingView
from catalog.feedback.logs import stream_dir
from catalog.layout import analytics_dir, run_dir, stack_name, state_root

__all__ = ["with_live_metrics"]

log = logging.getLogger("catalog.feedback.served")


def with_live_metrics(
    catalog_path: Path, catalog: Catalog, views: Sequence[ApplicationView], target: str = "local"
) -> list[ApplicationView]:
    """``views`` (``application_views`` of ``catalog``, read from ``catalog_path``) with each routed
    version's live metrics where its application's stack (of ``target``) has logged assignments."""
    apps = {app.name: app for app in catalog.applications}
    root = state_root(catalog_path)
    return [_application(root, catalog, apps[view.name], view, target) for view in views]


def _application(root: Path, catalog: Catalog, app: Application, view: ApplicationView, target: str) -> ApplicationView:
    analytics = analytics_dir(run_dir(root, stack_name(app.environment, target)))
    if not has_labels(app) or not stream_dir(analytics, "assignments", app.name).is_dir():
        return view
    import duckdb  # only where there is something to read

    from catalog.feedback.warehouse import live_metrics

    labels = [outcome.name for outcome in app.outcomes if outcome.kind == "label"]
    bindings: list[BindingView] = []
    for binding, shown in zip(app.bindings, view.bindings, strict=True):
        metric = live_metric(catalog, app, binding)
        if metric is None:
            bindings.append(shown)
            continue
        plan = effective_analysis(catalog, app, binding)
        try:
            found = live_metrics(analytics, app.name, binding.model, metric, labels, plan.window_hours, plan.sticky)
        except (duckdb.Error, OSError) as e:  # show what the catalog says, whatever the logs
            log.warning("%s: cannot read the live metrics of %s: %s", analytics, binding.model, e)
            found = {}
        routes = [replace(route, live_metrics=found.get(route.version, {})) for route in shown.routes]
        bindings.append(replace(shown, routes=routes))
    return replace(view, bindings=bindings)
