"""Renderings of ``modelcat diff``: text for a terminal, Markdown for a pull-request comment, JSON.

Only the CLI prints; these functions return lines or a document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from catalog.domain.diff import ApplicationChange, BindingChange, CatalogDiff, FieldChange, Traffic, VersionChange
from catalog.domain.digests import is_digest
from catalog.synth.blast import ACTIONS

if TYPE_CHECKING:
    from catalog.diffing import DiffOutcome

__all__ = ["diff_json", "diff_markdown", "diff_text", "value_text", "warnings"]


def value_text(value: object) -> str:
    if value is None:
        return "(none)"
    if is_digest(value):
        return value[:19] + "…"
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def _change(c: FieldChange) -> str:
    return f"{c.field} {value_text(c.before)} -> {value_text(c.after)}"


def _traffic(traffic: Sequence[Traffic]) -> str:
    return ", ".join(f"{t.application} {t.weight} %" for t in traffic)


def _routes(binding: BindingChange, after: bool = True) -> str:
    routes = binding.routes_after if after else binding.routes_before
    return " ".join(f"{r.version}={r.weight}%" for r in routes)


def warnings(diff: CatalogDiff) -> list[str]:
    """What a reviewer must not miss: released bytes rewritten, serving versions deleted."""
    out = []
    for v in diff.served_digest_swaps:
        digest = next(c for c in v.changes if c.field == "artifact.digest")
        out.append(
            f"{v.model} {v.version}: digest changed ({value_text(digest.before)} -> {value_text(digest.after)}) "
            f"on a version that served traffic on the base ({_traffic(v.served_on_base)})"
        )
    for r in diff.versions_removed:
        if r.traffic:
            out.append(f"{r.model} {r.version}: removed; it served traffic on the base ({_traffic(r.traffic)})")
    return out


def _binding_lines(b: BindingChange) -> list[str]:
    if b.status == "added":
        return [f"+ {b.model}: {_routes(b)}"]
    if b.status == "removed":
        return [f"- {b.model} (was {_routes(b, after=False)})"]
    lines = []
    if b.weights:
        weights = ", ".join(f"{w.version} {value_text(w.before)} -> {value_text(w.after)}" for w in b.weights)
        lines.append(f"~ {b.model}: weights {weights} (now {_routes(b)})")
    lines += [f"~ {b.model}: {_change(c)}" for c in b.changes]
    return lines


def _application_lines(a: ApplicationChange) -> list[str]:
    mark = {"added": "+", "removed": "-", "changed": "~"}[a.status]
    lines = [f"{mark} {a.name} (environment {a.environment})" + (f" {a.status}" if a.status != "changed" else "")]
    lines += [f"    {_change(c)}" for c in a.changes]
    for b in a.bindings:
        lines += [f"    {line}" for line in _binding_lines(b)]
    return lines


def _version_change(v: VersionChange) -> str:
    served = f" [served on base: {_traffic(v.served_on_base)}]" if v.served_digest_swap else ""
    return f"~ {v.model} {v.version}: " + "; ".join(_change(c) for c in v.changes) + served


def _sections(diff: CatalogDiff) -> list[tuple[str, list[str]]]:
    """(title, lines) per part of the catalog that changed, in a fixed order."""
    models = [
        f"~ renamed {r.before} -> {r.after} (versions {', '.join(r.versions)}, same digests)" for r in diff.renames
    ]
    models += [f"+ {name}" for name in diff.models_added]
    models += [f"- {name}" for name in diff.models_removed]
    models += [f"~ {m.name}: " + "; ".join(_change(c) for c in m.changes) for m in diff.models_changed]
    versions = [
        f"+ {r.model} {r.version} ({r.stage}, {value_text(r.digest)}, {r.size_bytes:,} bytes)"
        + (f" routed: {_traffic(r.traffic)}" if r.traffic else "")
        for r in diff.versions_added
    ]
    versions += [
        f"- {r.model} {r.version} ({r.stage}, {value_text(r.digest)})"
        + (f" served on base: {_traffic(r.traffic)}" if r.traffic else "")
        for r in diff.versions_removed
    ]
    versions += [_version_change(v) for v in diff.versions_changed]
    apps = [line for a in diff.applications for line in _application_lines(a)]
    envs = []
    for e in diff.environments:
        mark = {"added": "+", "removed": "-", "changed": "~"}[e.status]
        envs.append(f"{mark} {e.name} (target {e.target})" + (f" {e.status}" if e.status != "changed" else ""))
        envs += [f"    {_change(c)}" for c in e.changes]
    settings = [f"~ {_change(c)}" for c in diff.settings]
    parts = [
        ("Models", models),
        ("Versions", versions),
        ("Applications", apps),
        ("Environments", envs),
        ("Defaults and limits", settings),
    ]
    return [(title, lines) for title, lines in parts if lines]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[a]} to {a}" for a in ACTIONS)


def diff_text(outcome: DiffOutcome) -> list[str]:
    lines = [f"modelcat diff {outcome.base.label} -> {outcome.head.label} ({outcome.head.file})"]
    lines += [f"note: {n}" for n in outcome.notes]
    lines += [f"WARNING: {w}" for w in warnings(outcome.diff)]
    if outcome.diff.empty:
        lines.append("no changes to the catalog")
    for title, body in _sections(outcome.diff):
        lines += ["", title, *(f"  {line}" for line in body)]
    if outcome.blast is not None:
        lines += ["", "Blast radius (the base's configuration taken as deployed)"]
        if not outcome.blast.stacks:
            lines.append("  no resource changes")
        for stack in outcome.blast.stacks:
            lines.append(f"  {stack.stack}: {_counts(stack.counts)}")
            for c in stack.changes:
                lines.append(f"    {c.action:<8} {c.subject}" + (f": {c.detail}" if c.detail else ""))
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def diff_markdown(outcome: DiffOutcome) -> str:
    """One Markdown document, for a pull-request comment."""
    out = [f"### modelcat diff `{outcome.base.label}` → `{outcome.head.label}`", ""]
    out += [f"> {n}" for n in outcome.notes]
    for w in warnings(outcome.diff):
        out.append(f"> [!WARNING]\n> {w}\n")
    if outcome.notes:
        out.append("")
    if outcome.diff.empty:
        out += ["No changes to the catalog.", ""]
    for title, body in _sections(outcome.diff):
        out += [f"#### {title}", "", "```diff", *body, "```", ""]
    if outcome.blast is not None:
        out += ["#### Blast radius", ""]
        if not outcome.blast.stacks:
            out += ["No resource changes.", ""]
        else:
            out += ["| stack | " + " | ".join(ACTIONS) + " |", "| --- |" + " ---: |" * len(ACTIONS)]
            for stack in outcome.blast.stacks:
                out.append(f"| {stack.stack} | " + " | ".join(str(stack.counts[a]) for a in ACTIONS) + " |")
            out.append("")
            for stack in outcome.blast.stacks:
                out += [f"<details><summary>{stack.stack}</summary>", ""]
                out += ["| action | what | detail |", "| --- | --- | --- |"]
                for c in stack.changes:
                    out.append(f"| {c.action} | {_md(c.subject)} | {_md(c.detail)} |")
                out += ["", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"


def diff_json(outcome: DiffOutcome) -> dict[str, Any]:
    return {
        "base": outcome.base.as_dict(),
        "head": outcome.head.as_dict(),
        "notes": outcome.notes,
        "changed": not outcome.diff.empty,
        "warnings": warnings(outcome.diff),
        "diff": outcome.diff.model_dump(mode="json"),
        "blast_radius": outcome.blast.model_dump(mode="json") if outcome.blast is not None else None,
    }
