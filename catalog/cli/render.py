"""Text and JSON renderings for the CLI. Only the CLI prints."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import click

from catalog.domain.problems import Problem
from catalog.errors import CatalogInvalid, ModelcatError
from catalog.wording import plural

if TYPE_CHECKING:
    from catalog.domain.live_metrics import LiveMetric
    from catalog.domain.views import ApplicationView

__all__ = ["Failure", "problem_lines", "problems_json", "show_text", "summary_line", "verdict"]

_COLOURS = {"error": "red", "warning": "yellow"}


def problem_lines(problems: Sequence[Problem]) -> list[str]:
    lines = []
    for p in problems:
        where = f"{p.file}:{p.line}:{p.column}: " if p.line else f"{p.file}: " if p.file else ""
        label = click.style(p.severity, fg=_COLOURS[p.severity], bold=True)
        path = f" {p.path}:" if p.path else ""
        lines.append(f"{where}{label}:{path} {p.message} [{p.code}]")
        if p.hint:
            lines.append(f"    hint: {p.hint}")
    return lines


def summary_line(file: str, problems: Sequence[Problem]) -> str:
    errors = sum(p.severity == "error" for p in problems)
    return f"{file}: {plural(errors, 'error')}, {plural(len(problems) - errors, 'warning')}"


@dataclass(frozen=True)
class Failure:
    """Why a command exits non-zero, as the ``error`` object of its JSON output.

    ``code`` is a stable machine name (an error class's ``code``, or a command's finding such as
    ``policy_denied``), ``message`` what happened, ``hint`` what to do about it.
    """

    code: str
    message: str
    hint: str

    @classmethod
    def of(cls, error: ModelcatError, command: str = "modelcat") -> Failure:
        return cls(error.code, str(error), error.hint.replace("{command}", command))


def verdict(failure: Failure | None) -> dict[str, object]:
    """``ok``, and the ``error`` object when there is a failure: what every JSON document carries."""
    return {"ok": failure is None, **({"error": asdict(failure)} if failure is not None else {})}


def problems_json(file: str, problems: Sequence[Problem], failure: Failure | None = None) -> str:
    """``file``, ``ok``, ``error`` (``failure``, or the catalog's errors when there are any) and ``problems``."""
    errors = [p for p in problems if p.severity == "error"]
    if failure is None and errors:
        failure = Failure.of(CatalogInvalid(file, errors))
    body = {"file": file, **verdict(failure), "problems": [p.as_dict() for p in problems]}
    return json.dumps(body, indent=2)


def _metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def _live(metrics: Mapping[str, LiveMetric]) -> str:
    """``is_fraud: auc=0.91 (n=120)`` per label outcome; ``-`` where no prediction got a label."""
    return "; ".join(m.describe(label) for label, m in metrics.items()) or "-"


def show_text(views: Sequence[ApplicationView]) -> list[str]:
    """One block per application: a table of its models' routed versions (with a LIVE column where
    the application's stack has live metrics)."""
    lines: list[str] = []
    for app in views:
        live = any(route.live_metrics for binding in app.bindings for route in binding.routes)
        header = ("MODEL", "VERSION", "WEIGHT", "STAGE", "AGE", "DIGEST", "METRICS", *(("LIVE",) if live else ()))
        rows: list[tuple[str, ...]] = []
        for binding in app.bindings:
            for i, route in enumerate(binding.routes):
                model = binding.model if i == 0 else ""
                if i == 0 and not binding.enabled:
                    model += " (disabled)"
                rows.append(
                    (
                        model,
                        route.version,
                        f"{route.weight}%",
                        route.stage,
                        f"{route.age_days}d",
                        route.digest.removeprefix("sha256:")[:12],
                        _metrics(route.metrics),
                        *((_live(route.live_metrics),) if live else ()),
                    )
                )
        widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
        sticky = sorted({b.sticky_key for b in app.bindings if b.sticky_key})
        title = f"{app.name}  (environment {app.environment}, owner {app.owner}"
        title += f", sticky on {', '.join(sticky)})" if sticky else ")"
        lines.append(click.style(title, bold=True))
        for row in [header, *rows]:
            cells = [cell.rjust(widths[c]) if c in (2, 4) else cell.ljust(widths[c]) for c, cell in enumerate(row)]
            lines.append("  " + "  ".join(cells).rstrip())
        lines += [
            click.style(
                f"  warning: {binding.model} {route.version} is {route.age_days} days old, over its "
                f"max_age_days gate of {binding.max_age_days} days: retrain it or route a newer version",
                fg="yellow",
            )
            for binding in app.bindings
            for route in binding.routes
            if route.over_age_gate
        ]
        lines.append("")
    return lines
