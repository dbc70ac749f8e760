"""``modelcat analyze``'s service: find the binding, gather its observations, decide, build the document.

The sources are the warehouse (assignments and outcomes, ``catalog.feedback.warehouse``) and the
telemetry (requests, errors and latency from Prometheus or the routers' counters,
``catalog.telemetry``); the statistics are ``catalog.analysis.verdict.decide``. This module only
joins them: what each does is in its own module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.analysis.data import ArmData, Decision, Observations
from catalog.analysis.document import Look, analysis_document, observations_at
from catalog.analysis.verdict import decide
from catalog.domain.effective import effective_analysis
from catalog.domain.live_metrics import live_metric
from catalog.errors import UsageError
from catalog.feedback.warehouse import observe
from catalog.layout import analytics_dir, run_dir, stack_name, state_root
from catalog.telemetry.promql import read_telemetry
from catalog.wording import did_you_mean

if TYPE_CHECKING:
    from catalog.domain.analysis_plan import AnalysisPlan
    from catalog.domain.models import Application, Binding, Catalog
    from catalog.telemetry.reading import TelemetryReading

__all__ = [
    "MAX_LOOKS",
    "analyze",
    "analyze_with_observations",
    "decide_with_history",
    "find_binding",
    "look_times",
    "with_telemetry",
]

MAX_LOOKS = 48  # points of the history charts (the decision replayed at each)


def _suggest(word: str, choices: Sequence[str]) -> str:
    hint = did_you_mean(word, choices)
    return f"; {hint.rstrip()}" if hint else ""


def _compares(binding: Binding) -> bool:
    """A binding that declares an analysis, or splits its traffic between versions."""
    return binding.enabled and (binding.analysis is not None or sum(1 for r in binding.routes if r.weight) > 1)


def find_binding(
    catalog: Catalog, catalog_path: Path, application: str, model: str | None, environment: str | None
) -> tuple[Application, Binding]:
    """``application``'s binding of ``model`` (None: its only one, or the only one that compares versions).
    UsageError, with the closest name,
    when the catalog has no such application (in ``environment``) or the application no such binding."""
    names = [a.name for a in catalog.applications]
    app = next((a for a in catalog.applications if a.name == application), None)
    if app is None:
        raise UsageError(
            f"no application {application!r} in {catalog_path} (applications: {', '.join(names) or 'none'})"
            + _suggest(application, names)
        )
    if environment is not None and app.environment != environment:
        raise UsageError(f"{application} runs in environment {app.environment!r}, not {environment!r}")
    models = [b.model for b in app.bindings]
    if model is None:
        compared = [b.model for b in app.bindings if _compares(b)]
        if len(models) == 1 or len(compared) == 1:
            model = models[0] if len(models) == 1 else compared[0]
        else:
            which = f"{len(compared)} of them compare versions: {', '.join(compared)}; " if compared else ""
            raise UsageError(
                f"{application} binds {len(models)} models ({', '.join(models)}); {which}choose one with --model"
            )
    binding = next((b for b in app.bindings if b.model == model), None)
    if binding is None:
        raise UsageError(
            f"{application} binds no model {model!r} (it binds {', '.join(models)})" + _suggest(model, models)
        )
    return app, binding


def with_telemetry(observations: Observations, reading: TelemetryReading) -> Observations:
    """The observations with requests, errors and latency from ``reading``; where it has no series at
    all, the assignment log's stay, and the notes say so."""
    if reading.no_data:
        note = "no telemetry series: requests, errors and latency are the assignment log's"
        return replace(observations, notes=(*observations.notes, *reading.notes, note))
    arms = []
    seen = set()
    for arm in observations.arms:
        seen.add(arm.version)
        telemetry = reading.versions.get(arm.version)
        if telemetry is None:
            arms.append(replace(arm, requests=0, errors=0, latency_p50_ms=None, latency_p99_ms=None,
                                over_latency_limit=None))  # fmt: skip
        else:
            arms.append(
                replace(
                    arm,
                    requests=telemetry.requests,
                    errors=telemetry.errors,
                    latency_p50_ms=telemetry.latency_p50_ms,
                    latency_p99_ms=telemetry.latency_p99_ms,
                    over_latency_limit=telemetry.over_latency_limit,
                )
            )
    for version, t in sorted(reading.versions.items()):
        if version not in seen:
            arms.append(
                ArmData(version, 0, t.requests, t.errors, t.latency_p50_ms, t.latency_p99_ms, t.over_latency_limit)
            )
    behind = [
        f"{arm.version} {reading.versions[arm.version].requests} of {arm.requests}"
        for arm in observations.arms
        if arm.version in reading.versions and reading.versions[arm.version].requests < arm.requests
    ]
    if behind:  # Prometheus scrapes every few seconds: the last requests of the period are not in it yet
        stale = (
            f"{reading.source} counted fewer requests than the assignment log ({', '.join(behind)}): its last"
            " scrape is behind the log; analyze again in a few seconds for the whole period"
        )
        notes: tuple[str, ...] = (stale,)
    else:
        notes = ()
    return replace(
        observations,
        arms=tuple(arms),
        telemetry_source=reading.source,
        queries={**observations.queries, **reading.queries},  # the warehouse's SQL stays in `sql`
        notes=(*observations.notes, *reading.notes, *notes),
    )


def look_times(observations: Observations, limit: int = MAX_LOOKS) -> list[str]:
    """The times of the arms' snapshots, at most ``limit`` of them evenly spread, the last always kept."""
    times = sorted({s.time for arm in observations.arms for s in arm.history})
    if len(times) <= limit:
        return times
    step = (len(times) - 1) / (limit - 1)
    return [times[round(i * step)] for i in range(limit)]


def decide_with_history(plan: AnalysisPlan, observations: Observations) -> tuple[Decision, list[Look]]:
    """The decision now, and as it stood at each look (``look_times``) from the snapshots up to then."""
    looks = [Look(t, decide(plan, observations_at(observations, t))) for t in look_times(observations)]
    return decide(plan, observations), looks


def _instant(value: str | None, fallback: datetime) -> datetime:
    if not value:
        return fallback
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def analyze(
    catalog: Catalog,
    catalog_path: Path,
    application: Application,
    binding: Binding,
    target: str,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    """The decision document of ``application``'s ``binding`` over [since, until] (None: from the first
    record, up to now), from the stack's logs and telemetry under the catalog's ``.modelcat`` folder."""
    return analyze_with_observations(catalog, catalog_path, application, binding, target, since, until)[0]


def analyze_with_observations(
    catalog: Catalog,
    catalog_path: Path,
    application: Application,
    binding: Binding,
    target: str,
    since: datetime | None,
    until: datetime | None,
) -> tuple[dict[str, Any], Observations]:
    """``analyze``'s document and the observations it decided on (what a rollout keeps as evidence)."""
    plan = effective_analysis(catalog, application, binding)
    stack = run_dir(state_root(catalog_path), stack_name(application.environment, target))
    outcomes = {o.name: o.kind for o in application.outcomes}
    observed = observe(
        analytics_dir(stack), application.name, binding.model, since, until, plan.window_hours, outcomes,
        plan.sticky, plan.max_p99_latency_ms, live_metric(catalog, application, binding),
    )  # fmt: skip
    start = since or _instant(observed.since, datetime.fromtimestamp(0, UTC))
    end = until or _instant(observed.until, datetime.now(UTC))
    reading = read_telemetry(stack, application.name, binding.model, start, end, plan.max_p99_latency_ms)
    observations = with_telemetry(observed, reading)
    decision, looks = decide_with_history(plan, observations)
    model = next((m for m in catalog.models if m.name == binding.model), None)
    offline = {v.version: dict(v.metrics) for v in (model.versions if model else [])}
    return analysis_document(plan, observations, decision, offline_metrics=offline, looks=looks), observations
