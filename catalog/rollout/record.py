"""A binding's rollout as git holds it: the catalog and the newest rollout record at a commit.

Everything the controller needs is read from a commit, never from the working tree, so a killed
controller resumes from git alone: ``read_state`` gives the catalog at that commit, the binding, its
effective rollout policy and its newest record (``rollouts/<rollout id>.json`` beside the catalog).
``hand_edit`` finds a change of the binding's routes (or mirror) made outside the rollout since its
last decision, and the commit that made it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from catalog.analysis.run import find_binding
from catalog.domain.effective import effective_rollout
from catalog.domain.models import Application, Binding, Catalog
from catalog.domain.rollouts import ROLLOUTS_FOLDER, RolloutPolicy, RolloutRecord, Routes
from catalog.errors import RolloutConflict, RolloutError, UsageError
from catalog.gitio import (
    commit_log,
    names_at_revision,
    repository_root,
    resolve_commit,
    show_at_revision,
)
from catalog.revisions import load_revision
from catalog.validate import read_catalog_bytes

__all__ = [
    "RolloutState",
    "binding_mirror",
    "binding_routes",
    "environment_target",
    "hand_edit",
    "policy_of",
    "read_state",
    "record_name",
]


def record_name(rollout_id: str) -> str:
    """The record's path relative to the catalog's folder: ``rollouts/<rollout id>.json``."""
    return f"{ROLLOUTS_FOLDER}/{rollout_id}.json"


def binding_routes(binding: Binding) -> Routes:
    return tuple((r.version, r.weight) for r in binding.routes)


def binding_mirror(binding: Binding) -> tuple[str, int] | None:
    return None if binding.mirror is None else (binding.mirror.version, binding.mirror.percent)


def environment_target(catalog: Catalog, environment: str) -> str:
    """The target ``environment`` deploys to (local unless the catalog says otherwise)."""
    declared = next((e for e in catalog.environments or [] if e.name == environment), None)
    return declared.target if declared is not None and declared.target else "local"


def policy_of(catalog: Catalog, binding: Binding) -> RolloutPolicy:
    """The rollout policy in force for ``binding``: its effective rollout block's steps and times."""
    effective = effective_rollout(catalog, binding)
    shadow = effective.shadow.percent if effective.shadow is not None else None
    return RolloutPolicy(effective.steps, effective.interval_seconds, effective.progress_deadline_seconds, shadow)


@dataclass(frozen=True)
class RolloutState:
    """The binding and its newest rollout at ``commit``."""

    catalog_path: Path
    commit: str  # the full sha the state was read from
    catalog_bytes: bytes  # models.yaml at that commit
    catalog: Catalog
    application: Application
    binding: Binding
    record: RolloutRecord | None  # the newest rollout of the binding (None: never rolled out)
    record_commit: str | None  # the commit of its last decision

    @property
    def folder(self) -> Path:
        return self.catalog_path.resolve().parent

    @property
    def routes(self) -> Routes:
        return binding_routes(self.binding)

    @property
    def mirror(self) -> tuple[str, int] | None:
        return binding_mirror(self.binding)

    @property
    def policy(self) -> RolloutPolicy:
        return policy_of(self.catalog, self.binding)

    @property
    def running(self) -> bool:
        """A rollout of the binding is under way (running or paused)."""
        return self.record is not None and not self.record.finished


def _newest_record(folder: Path, commit: str, application: str, model: str) -> tuple[RolloutRecord, str] | None:
    prefix = f"{application}.{model}."
    names = [n for n in names_at_revision(folder, commit, ROLLOUTS_FOLDER) if n.startswith(prefix)]
    names = [n for n in names if n.endswith(".json")]
    # <application>.<model>.<version>.<YYYYmmddTHHMMSSZ>.json: the newest start last
    names.sort(key=lambda n: (n.removesuffix(".json").rsplit(".", 1)[-1], n))
    for name in reversed(names):
        relative = f"{ROLLOUTS_FOLDER}/{name}"
        data = show_at_revision(folder, commit, relative)
        if data is None:
            continue
        try:
            record = RolloutRecord.from_json(json.loads(data))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RolloutError(f"{relative}@{commit[:12]} is not a rollout record: {e}") from e
        if not record.decisions:
            raise RolloutError(f"{relative}@{commit[:12]} is not a rollout record: it has no decision")
        if (record.application, record.model) == (application, model):
            return record, relative
    return None


def read_state(catalog_path: Path, application: str, model: str | None, revision: str = "HEAD") -> RolloutState:
    """The binding of ``model`` (None: the application's only one, or the only one that compares
    versions) and its newest rollout, as committed at ``revision``."""
    if not catalog_path.is_file():
        read_catalog_bytes(catalog_path)  # CatalogNotFound, saying why
    folder = catalog_path.resolve().parent
    if repository_root(folder) is None:
        raise UsageError(f"{catalog_path} is not in a git repository: a rollout's decisions are commits")
    commit = resolve_commit(folder, revision)
    loaded = load_revision(catalog_path, commit)
    if not loaded.present or loaded.text is None:
        raise RolloutError(f"{catalog_path} is not committed at {revision} ({commit[:12]})")
    catalog = loaded.valid()
    app, binding = find_binding(catalog, catalog_path, application, model, None)
    found = _newest_record(folder, commit, app.name, binding.model)
    record, record_commit = None, None
    if found is not None:
        record, relative = found
        touched = commit_log(folder, [relative], commit)
        record_commit = touched[-1].sha if touched else None
    data = show_at_revision(folder, commit, catalog_path.name) or b""
    return RolloutState(catalog_path, commit, data, catalog, app, binding, record, record_commit)


def hand_edit(state: RolloutState) -> RolloutConflict | None:
    """The conflict when the binding's routes or mirror at the state's commit are not what the
    running rollout's last decision left, naming the commit that changed them (None: they are)."""
    record = state.record
    if record is None or record.finished:
        return None
    left = (record.routes, record.last.mirror)
    if (state.routes, state.mirror) == left:
        return None
    culprit = "an uncommitted or unknown change"
    since = f"{state.record_commit}..{state.commit}" if state.record_commit else state.commit
    for logged in commit_log(state.folder, [state.catalog_path.name], since):
        sha, subject = logged.sha, logged.subject
        at = load_revision(state.catalog_path, sha)
        if at.catalog is None:
            continue
        binding = next(
            (b for a in at.catalog.applications if a.name == record.application for b in a.bindings
             if b.model == record.model), None,
        )  # fmt: skip
        if binding is None or (binding_routes(binding), binding_mirror(binding)) != left:
            culprit = f"commit {sha[:12]} ({subject})"
            break

    def shown(routes: Routes, mirror: tuple[str, int] | None) -> str:
        text = ", ".join(f"{v}={w}%" for v, w in routes)
        return text + (f", mirror {mirror[0]} {mirror[1]} %" if mirror else "")

    return RolloutConflict(
        f"{record.application}/{record.model} routes are {shown(state.routes, state.mirror)}, not"
        f" {shown(*left)} as rollout {record.rollout_id} left them: {culprit} changed them by hand;"
        " nothing was written"
    )
