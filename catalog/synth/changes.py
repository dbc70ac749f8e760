"""A Terraform plan told in model terms: which application gains, loses or re-weights which version.

Input is the ``resource_changes`` list of ``terraform show -json PLANFILE``; output one ``Change``
per resource, with a line a reviewer reads without knowing the resource types. Types this module
does not know are still listed, in Terraform's words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.wording import plural

__all__ = ["Change", "describe_changes"]

_VERBS = {
    ("create",): "create",
    ("update",): "update",
    ("delete",): "delete",
    ("create", "delete"): "replace",
    ("delete", "create"): "replace",
    ("read",): "read",
    ("no-op",): "no-op",
}


@dataclass(frozen=True, slots=True)
class Change:
    address: str
    action: str  # create, update, replace, delete, read, no-op
    subject: str  # e.g. "checkout: fraud-scorer 1.4.0"
    detail: str  # e.g. "3 replicas of sha256:344eb462ff67"

    def line(self) -> str:
        return f"{self.action:<8} {self.subject}" + (f": {self.detail}" if self.detail else "")


def _short(digest: object) -> str:
    text = str(digest or "")
    return text[:19] if text.startswith("sha256:") else text


def _endpoint(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, action: str) -> tuple[str, str]:
    state = after or before or {}
    labels = state.get("labels") or {}
    app = labels.get("modelcat/application") or str(state.get("name", "")).split(".")[0]
    subject = f"{app}: {state.get('model')} {state.get('version')} endpoint"
    if action == "create":
        return subject, f"{plural(after['replicas'], 'replica')} of {_short(after.get('digest'))}" if after else ""
    if action == "delete":
        return subject, f"stop {plural(before['replicas'], 'replica')}" if before else ""
    details = []
    if before and after:
        if before.get("digest") != after.get("digest"):
            details.append(f"bytes {_short(before.get('digest'))} -> {_short(after.get('digest'))}")
        if before.get("replicas") != after.get("replicas"):
            details.append(f"replicas {before.get('replicas')} -> {after.get('replicas')}")
        if before.get("secret") != after.get("secret") or before.get("secret_versions") != after.get(
            "secret_versions"
        ):  # a new KV version (unknown until read) or another secret block: the replicas restart
            held = before.get("secret_versions") or {}
            versions = ", ".join(f"{name} v{int(v)}" for name, v in sorted(held.items())) or "none"
            details.append(f"new secret versions (held: {versions}): replicas restart one at a time")
    return subject, ", ".join(details)


def _weights(models: Iterable[Mapping[str, Any]] | None) -> dict[tuple[str, str], int]:
    """``(model, version) -> weight`` of a router's ``model`` blocks."""
    return {
        (str(m.get("name")), str(r.get("version"))): int(r.get("weight") or 0)
        for m in models or ()
        for r in m.get("route") or ()
    }


def _route(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, action: str) -> tuple[str, str]:
    state = after or before or {}
    subject = f"{state.get('application')}: router"
    old, new = _weights((before or {}).get("model")), _weights((after or {}).get("model"))
    parts = []
    for key in list(dict.fromkeys([*old, *new])):
        model, version = key
        if key not in old:
            parts.append(f"{model} {version} {new[key]} %")
        elif key not in new:
            parts.append(f"{model} {version} removed (was {old[key]} %)")
        elif old[key] != new[key]:
            parts.append(f"{model} {version} {old[key]} -> {new[key]} %")
    if action == "update" and not parts:
        parts.append("replica addresses change")
    return subject, ", ".join(parts)


def _metrics(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, action: str) -> tuple[str, str]:
    state = after or before or {}
    subject = f"{state.get('name')}: Prometheus"
    if action == "delete":
        return subject, "stop it"
    return (
        subject,
        f"scrape the routers and replicas every {state.get('scrape_interval')}, keep {state.get('retention')}",
    )


_DESCRIBERS = {"modelcat_endpoint": _endpoint, "modelcat_route": _route, "modelcat_metrics": _metrics}


def describe_changes(resource_changes: Sequence[Mapping[str, Any]]) -> list[Change]:
    """Every change that does something (no-ops and reads are left out), in plan order."""
    changes = []
    for rc in resource_changes:
        change = rc.get("change") or {}
        action = _VERBS.get(tuple(change.get("actions") or ()), "/".join(change.get("actions") or ()))
        if action in ("no-op", "read"):
            continue
        describe = _DESCRIBERS.get(str(rc.get("type")))
        if describe is None:
            changes.append(Change(str(rc.get("address")), action, str(rc.get("address")), ""))
            continue
        subject, detail = describe(change.get("before"), change.get("after"), action)
        changes.append(Change(str(rc.get("address")), action, subject, detail))
    return changes
