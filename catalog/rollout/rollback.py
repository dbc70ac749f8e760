"""``modelcat rollback APP --model M --to GITREF``: the binding's routes (and mirror) as they were at a
revision, restored as one commit, through the same review rules as a pull request.

Refused, with nothing written, when a version those routes name has been removed from the catalog
since, while a rollout of the binding is under way (abort it instead), when the catalog file has
uncommitted changes (they would be committed with it), and when ``modelcat review`` would block
the change (validation, the policies; each finding listed). The commit is made with
``catalog.gitwrite.commit_files`` under the catalog's lock: subject ``rollback APP/MODEL to REF``,
trailers ``Rollback-To: <ref> <sha>`` and ``Decided-By``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from catalog.domain.models import Binding, Catalog
from catalog.domain.rollouts import Routes, routes_text
from catalog.editing import locked_catalog, routes_edited
from catalog.errors import RollbackRefused, UsageError
from catalog.gitio import repository_root
from catalog.gitwrite import author_identity, commit_files, head_commit, message_with_trailers
from catalog.review import Review, review
from catalog.revisions import check_revision, load_revision, proposed_revision
from catalog.rollout.record import read_state
from catalog.rolloutlog import DECIDED_BY, ROLLBACK_TO

__all__ = ["RolledBack", "rollback"]

Mirror = tuple[str, int] | None


@dataclass(frozen=True)
class RolledBack:
    """What ``rollback`` did: the routes before and after, and its commit (None: already so)."""

    application: str
    model: str
    ref: str
    target: str  # the full sha ``ref`` named
    before: tuple[Routes, Mirror]
    after: tuple[Routes, Mirror]
    commit: str | None
    review: Review | None

    def as_json(self) -> dict[str, Any]:
        def shape(state: tuple[Routes, Mirror]) -> dict[str, Any]:
            routes, mirror = state
            return {
                "routes": [{"version": v, "weight": w} for v, w in routes],
                "mirror": None if mirror is None else {"version": mirror[0], "percent": mirror[1]},
            }

        return {
            "application": self.application,
            "model": self.model,
            "to": {"ref": self.ref, "commit": self.target},
            "before": shape(self.before),
            "after": shape(self.after),
            "changed": self.commit is not None,
            "commit": self.commit,
            "notes": self.review.notes if self.review is not None else [],
        }


def _binding(catalog: Catalog, application: str, model: str) -> Binding | None:
    app = next((a for a in catalog.applications if a.name == application), None)
    return next((b for b in app.bindings if b.model == model), None) if app is not None else None


def _state(binding: Binding) -> tuple[Routes, Mirror]:
    mirror = (binding.mirror.version, binding.mirror.percent) if binding.mirror is not None else None
    return tuple((r.version, r.weight) for r in binding.routes), mirror


def rollback(path: Path, application: str, model: str, ref: str, *, policies_dir: Path, now: datetime) -> RolledBack:
    """Restore ``application``'s routes (and mirror) for ``model`` as they were at ``ref``, as one
    commit on the current branch (see the module docstring for when it is refused)."""
    check_revision(ref)
    folder = path.resolve().parent
    top = repository_root(folder)
    if top is None:
        raise UsageError(f"{path} is not in a git repository: rollback restores a git revision")
    then = load_revision(path, ref)
    target = head_commit(top, ref) or ref
    if not then.present:
        raise RollbackRefused(f"{path.name} does not exist at {ref}")
    catalog_then = then.valid()
    old = _binding(catalog_then, application, model)
    if old is None:
        raise RollbackRefused(f"{application} did not bind {model} at {ref} ({target[:12]}): nothing to restore")
    restored = _state(old)
    with locked_catalog(path) as locked:
        head = load_revision(path, "HEAD", like=then)
        parent = head_commit(top)
        if head.text is None or locked.original != head.text.encode("utf-8"):
            raise RollbackRefused(f"{path} has uncommitted changes: commit or discard them first")
        catalog_now = head.valid()
        current = _binding(catalog_now, application, model)
        if current is None:
            raise RollbackRefused(f"{application} no longer binds {model}: restore the binding by hand")
        rolling = read_state(path, application, model).record
        if rolling is not None and not rolling.finished:
            raise RollbackRefused(
                f"a rollout of {application}/{model} is under way: {rolling.rollout_id} ({rolling.status});"
                f" abort it first ('modelcat rollout abort {application} --model {model}')"
            )
        kept = {v.version for m in catalog_now.models if m.name == model for v in m.versions}
        named = [v for v, _ in restored[0]] + ([restored[1][0]] if restored[1] else [])
        removed = sorted({v for v in named if v not in kept})
        if removed:
            raise RollbackRefused(
                f"the routes of {ref} name {model} {', '.join(removed)}, removed from {path} since;"
                " register the version again or choose another revision"
            )
        before = _state(current)
        if before == restored:
            return RolledBack(application, model, ref, target, before, restored, None, None)
        new_text, _ = routes_edited(locked, application, model, restored[0], mirror=restored[1])
        proposed = proposed_revision(path, new_text.encode("utf-8"), like=head)
        judged = review(path, "HEAD", policies_dir=policies_dir, now=now, verify=False, proposed=proposed)
        if not judged.ok:
            raise RollbackRefused(
                f"review blocks restoring {application}/{model} to {routes_text(*restored)}:\n  "
                + "\n  ".join(judged.blocking)
            )
        relative = path.resolve().relative_to(top).as_posix()
        body = (
            f"Restores the routes of {ref} ({target[:12]}): {routes_text(*restored)}; they were {routes_text(*before)}."
        )
        trailers = [(ROLLBACK_TO, f"{ref} {target}"), (DECIDED_BY, f"modelcat rollback ({author_identity(top)})")]
        message = message_with_trailers(f"rollback {application}/{model} to {ref}", body, trailers)
        sha = commit_files(top, {relative: new_text.encode("utf-8")}, message, expected_parent=parent)
    return RolledBack(application, model, ref, target, before, restored, sha, judged)
