"""A policy run as text, Markdown (a pull-request comment) or JSON. Strings only (SARIF: catalog.policy.sarif)."""

from __future__ import annotations

import json

from catalog.policy.findings import Finding, PolicyResult
from catalog.wording import plural

__all__ = ["as_dict", "render", "summary", "to_json", "to_markdown", "to_text"]


def _where(f: Finding) -> str:
    return f"{f.file}:{f.line}:{f.column}" if f.file and f.line else (f.file or "-")


def summary(result: PolicyResult) -> str:
    waived = f", {len(result.waived)} waived" if result.waived else ""
    counts = f"{plural(len(result.rules), 'rule')}, {plural(result.inputs, 'input')}"
    return f"{len(result.denies)} denied, {plural(len(result.warnings), 'warning')}{waived} ({counts})"


def to_text(result: PolicyResult) -> str:
    lines = []
    for f in result.findings:
        lines.append(f"{_where(f)}: {f.severity}: {f.rule} {f.message} [{f.subject}]")
    for f in result.waived:
        lines.append(f"{_where(f)}: waived: {f.rule} {f.message} [{f.subject}] (waiver: {f.waived})")
    for rule, why in sorted(result.skipped.items()):
        lines.append(f"note: {rule} not evaluated: {why}")
    lines.append(f"policy check: {summary(result)}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(result: PolicyResult) -> str:
    verdict = "❌ policy check failed" if result.denies else "✅ policy check passed"
    out = [
        f"### {verdict}",
        "",
        summary(result) + (f", base `{result.base}`" if result.base else "") + f", as of {result.now}",
        "",
    ]
    if result.findings:
        out += ["| | rule | subject | finding | where |", "| --- | --- | --- | --- | --- |"]
        for f in result.findings:
            mark = "❌ deny" if f.severity == "deny" else "⚠️ warn"
            out.append(f"| {mark} | {f.rule} {_md(f.title)} | `{f.subject}` | {_md(f.message)} | `{_where(f)}` |")
        out.append("")
    if result.waived:
        out += [
            "<details><summary>Waived findings</summary>",
            "",
            "| rule | subject | finding | reason |",
            "| --- | --- | --- | --- |",
        ]
        out += [f"| {f.rule} | `{f.subject}` | {_md(f.message)} | {_md(f.waived)} |" for f in result.waived]
        out += ["", "</details>", ""]
    if result.skipped:
        out.append("Not evaluated: " + ", ".join(f"{r} ({why})" for r, why in sorted(result.skipped.items())))
        out.append("")
    return "\n".join(out)


def to_json(result: PolicyResult) -> str:
    return json.dumps(as_dict(result), indent=2)


def as_dict(result: PolicyResult) -> dict[str, object]:
    """The JSON document of a run (what ``--format json`` prints)."""
    return {
        "ok": result.ok,
        "now": result.now,
        "base": result.base or None,
        "summary": {"deny": len(result.denies), "warn": len(result.warnings), "waived": len(result.waived)},
        "rules": [
            {
                "id": r.id,
                "title": r.title,
                "severity": r.severity,
                "file": r.file,
                "skipped": result.skipped.get(r.id),
            }
            for r in result.rules
        ],
        "findings": [f.as_dict() for f in result.findings],
        "waived": [f.as_dict() for f in result.waived],
    }


def render(result: PolicyResult, fmt: str) -> str:
    """``result`` as text, markdown or json (SARIF needs the catalog's place: catalog.policy.sarif)."""
    return {"text": to_text, "markdown": to_markdown, "json": to_json}[fmt](result)
