"""``modelcat rollout history``: which version had which share of a binding's traffic, from when to
when, who or what decided each change and why, with the evidence; built from git.

The log of the catalog file and its rollouts' files on the current branch (oldest first) is read
commit by commit (``catalog.rolloutlog``); the catalog at each commit that changed it is loaded
through ``catalog.revisions.load_revision`` (reusing the previous revision's models). A period
begins at each commit that changed the binding's routes or mirror, whoever made it: a rollout's
decision (its ``Decided-By``, ``Decision`` and evidence), a rollback, or a change by hand in an
ordinary commit (its author and subject). Rollout decisions that left the routes alone (hold,
pause, resume) are listed within the period they happened in. Times are commit times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.domain.models import Catalog
from catalog.domain.rollouts import Routes
from catalog.errors import UsageError
from catalog.gitio import commit_log
from catalog.revisions import Revision, load_revision
from catalog.rolloutlog import CommitDecision, catalog_commits
from catalog.wording import did_you_mean

__all__ = ["SCHEMA", "BindingHistory", "Period", "binding_history", "history_json"]

SCHEMA = "modelcat/rollout-history-v1"

State = tuple[Routes, tuple[str, int] | None] | None  # (routes, mirror); None: not bound


@dataclass
class Period:
    """The binding's routes (and mirror) from ``since`` until ``until`` (None: until now)."""

    routes: Routes  # empty: the binding was removed
    mirror: tuple[str, int] | None
    since: str
    until: str | None
    change: CommitDecision  # the commit that set them
    events: list[CommitDecision] = field(default_factory=list)  # decisions that left them alone

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "bound": bool(self.routes),
            "routes": [{"version": v, "weight": w} for v, w in self.routes],
            "mirror": None if self.mirror is None else {"version": self.mirror[0], "percent": self.mirror[1]},
            "change": self.change.as_json(),
            "events": [e.as_json() for e in self.events],
        }


@dataclass
class BindingHistory:
    application: str
    model: str
    periods: list[Period] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"application": self.application, "model": self.model, "periods": [p.as_json() for p in self.periods]}


def _states(catalog: Catalog, application: str) -> dict[str, State]:
    app = next((a for a in catalog.applications if a.name == application), None)
    if app is None:
        return {}
    return {
        b.model: (
            tuple((r.version, r.weight) for r in b.routes),
            (b.mirror.version, b.mirror.percent) if b.mirror is not None else None,
        )
        for b in app.bindings
    }


def _concerns(decision: CommitDecision, application: str, model: str) -> bool:
    """Whether a rollout decision is one of this binding's rollouts."""
    if decision.record is not None:
        return decision.record.application == application and decision.record.model == model
    return (decision.rollout_id or "").startswith(f"{application}.{model}.")


def binding_history(
    path: Path, application: str, model: str | None = None, tip: str = "HEAD"
) -> tuple[list[BindingHistory], list[str]]:
    """The history of ``application``'s binding of ``model`` (None: of every binding it ever had)
    up to the commit ``tip`` (the current branch's by default), and notes (revisions that could not
    be read). UsageError when the log never names the application (or the binding)."""
    folder = path.resolve().parent
    catalog_changes = {c.sha for c in commit_log(folder, [path.name], tip)}
    histories: dict[str, BindingHistory] = {}
    current: dict[str, State] = {}
    notes: list[str] = []
    known_apps: set[str] = set()
    previous: Revision | None = None
    for decision in catalog_commits(path, tip):
        sha = decision.commit.sha
        states = current
        if sha in catalog_changes:
            revision = load_revision(path, sha, like=previous)
            if revision.catalog is None or revision.errors:
                if revision.present:
                    notes.append(f"{path.name}@{sha[:12]} is not a valid catalog: its changes are not shown")
                    continue
                states = {}
            else:
                previous = revision
                known_apps |= {a.name for a in revision.catalog.applications}
                states = _states(revision.catalog, application)
        for name in dict.fromkeys([*current, *states]):
            if model is not None and name != model:
                continue
            before, after = current.get(name), states.get(name)
            history = histories.setdefault(name, BindingHistory(application, name))
            if after != before:
                if history.periods:
                    history.periods[-1].until = decision.commit.time
                routes, mirror = after if after is not None else ((), None)
                history.periods.append(Period(routes, mirror, decision.commit.time, None, decision))
            elif decision.kind == "rollout" and history.periods and _concerns(decision, application, name):
                history.periods[-1].events.append(decision)
        current = states
    found = [h for h in histories.values() if h.periods]
    if not found:
        if application not in known_apps:
            hint = did_you_mean(application, known_apps).strip()
            raise UsageError(f"no application {application!r} in the history of {path}" + (f"; {hint}" if hint else ""))
        raise UsageError(f"{application} never bound a model {model!r} in the history of {path}")
    return found, notes


def history_json(path: Path, application: str, histories: list[BindingHistory], notes: list[str]) -> dict[str, Any]:
    return {
        "ok": True,
        "schema": SCHEMA,
        "catalog": str(path),
        "application": application,
        "bindings": [h.as_json() for h in histories],
        "notes": notes,
    }
