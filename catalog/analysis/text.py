"""The decision document for people: plain text for a terminal, Markdown for a pull request's comment.

Both read the document (``catalog.analysis.document``), not the statistics' values, so what a person
reads is what a policy reads. Pure: they return text; the CLI prints it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from catalog.domain.live_metrics import LiveMetric
from catalog.wording import plural

__all__ = [
    "interval_text",
    "live_text",
    "markdown_report",
    "metric_cells",
    "number",
    "plan_line",
    "shadow_lines",
    "text_report",
    "window",
]

Doc = Mapping[str, Any]
VERSION_HEADER = ("VERSION", "ROLE", "UNITS", "REQUESTS", "ERRORS", "ERROR RATE", "P50 MS", "P99 MS")
METRIC_HEADER = ("METRIC", "KIND", "DIFFERENCE", "INTERVAL", "P", "P (HOLM)", "VOTE")


def number(value: Any, signed: bool = False) -> str:
    """A document's number as a person reads it: 4 significant digits, "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, int):  # bool is an int
        return str(value)
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3g}%"


def interval_text(interval: Sequence[float | None] | None, signed: bool = True) -> str:
    """``[lo, hi]``; signed (a difference) or not (a rate)."""
    return "-" if interval is None else f"[{number(interval[0], signed)}, {number(interval[1], signed)}]"


def plan_line(plan: Mapping[str, Any]) -> str:
    """What is compared, in one sentence."""
    parts = [f"baseline {plan['baseline']}"]
    primary = plan["primary"]
    if primary:
        parts.append(
            f"primary {primary['outcome']} ({primary['kind']}, {primary['direction']}, mde {number(primary['mde'])})"
        )
    guards = plan["guardrails"]
    rails = []
    if guards["max_error_rate"] is not None:
        rails.append(f"error rate <= {_percent(guards['max_error_rate'])}")
    if guards["max_p99_latency_ms"] is not None:
        rails.append(f"p99 <= {guards['max_p99_latency_ms']} ms")
    rails += [f"{g['outcome']} drop <= {number(g['max_drop'])}" for g in guards["outcomes"]]
    parts.append("guardrails " + (", ".join(rails) if rails else "none"))
    parts.append(f"at least {plural(plan['min_samples_per_arm'], 'unit')} per arm, alpha {number(plan['alpha'])}")
    return "; ".join(parts)


def _outcome_names(doc: Doc) -> list[str]:
    return sorted({name for v in doc["versions"] for name in v["outcomes"]})


def _version_rows(doc: Doc) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    outcomes = _outcome_names(doc)
    live = any(v["live_metrics"] for v in doc["versions"])
    header = (*VERSION_HEADER, *(f"{name.upper()} (N, MEAN)" for name in outcomes), "OFFLINE METRICS")
    header += ("LIVE METRICS",) if live else ()
    rows = []
    for v in doc["versions"]:
        cells: tuple[str, ...] = (
            v["version"],
            v["role"],
            number(v["units"]),
            number(v["requests"]),
            number(v["errors"]),
            _percent(v["error_rate"]),
            number(v["latency_ms"]["p50"]),
            number(v["latency_ms"]["p99"]),
        )
        stats = [v["outcomes"].get(name) for name in outcomes]
        cells += tuple(f"{s['n']}, {number(s['mean'])}" if s else "-" for s in stats)
        offline = " ".join(f"{k}={number(x)}" for k, x in sorted(v["offline_metrics"].items())) or "-"
        rows.append((*cells, offline, *((live_text(v),) if live else ())))
    return header, rows


def live_text(version: Mapping[str, Any]) -> str:
    """The version's live metrics (``is_fraud: auc=0.903 (n=1840)``), ``-`` without any."""
    metrics = sorted(version["live_metrics"].items())
    return "; ".join(LiveMetric(**m).describe(label) for label, m in metrics) or "-"


def metric_cells(version: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            m["name"],
            m["kind"],
            number(m["difference"] if m["difference"] is not None else m["estimate"], m["difference"] is not None),
            interval_text(m["interval"], m["difference"] is not None),
            number(m["p_value"]),
            number(m["p_adjusted"]),
            m["vote"],
        )
        for m in version["metrics"]
    ]


def _epoch_cells(epoch: Mapping[str, Any]) -> tuple[str, ...]:
    declared = " ".join(f"{k}={w}%" for k, w in sorted(epoch["declared"].items()))
    observed = " ".join(f"{k}={n}" for k, n in sorted(epoch["observed"].items()))
    check = "SRM" if epoch["srm"] else "ok" if epoch["p_value"] is not None else "not checked"
    return (
        f"{epoch['start']} .. {epoch['end']}",
        declared,
        observed,
        number(epoch["chi_square"]),
        number(epoch["p_value"]),
        check,
    )


EPOCH_HEADER = ("EPOCH", "DECLARED", "OBSERVED UNITS", "CHI-SQUARE", "P", "CHECK")


JOIN_COUNTS = ("attributed", "duplicates", "unattributed", "out_of_window", "late")


def _joins_line(joins: Mapping[str, int]) -> str:
    """The events read, then each count (the documented ones first, any other after them)."""
    others = sorted(set(joins) - {"events", *JOIN_COUNTS})
    counts = ", ".join(f"{joins[name]} {name.replace('_', ' ')}" for name in (*JOIN_COUNTS, *others))
    return f"{plural(joins['events'], 'event')}: {counts}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    return [indent + "  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip() for row in [header, *rows]]


def window(doc: Doc) -> str:
    """The analysed period: since .. until."""
    return f"{doc['since'] or 'the first record'} .. {doc['until'] or 'the last'}"


def _title(doc: Doc) -> str:
    return f"{doc['application']} / {doc['model']} (environment {doc['environment']}), {window(doc)}"


def _candidates(doc: Doc) -> list[Mapping[str, Any]]:
    return [v for v in doc["versions"] if v["role"] == "candidate"]


def text_report(doc: Doc) -> str:
    """What a person reads in a terminal: the source and its queries, the epochs, a table per version,
    and per candidate its metrics and its verdict with the reasons."""
    lines = [_title(doc), f"plan: {plan_line(doc['plan'])}", f"source: {doc['source']['telemetry']}"]
    lines += [
        f"  {name}: " + query.replace("\n", "\n      ") for name, query in sorted(doc["source"]["queries"].items())
    ]
    lines += [f"  note: {note}" for note in doc["source"]["notes"]]
    if doc["source"]["sql"]:
        lines.append(
            f"  the warehouse's {plural(len(doc['source']['sql']), 'SQL query', 'SQL queries')}: --format json (source.sql)"
        )
    lines.append("epochs (sample ratio per routing table; p < 0.001 is a mismatch that withholds every verdict):")
    lines += _table(EPOCH_HEADER, [_epoch_cells(e) for e in doc["epochs"]]) if doc["epochs"] else ["  none"]
    lines.append(f"outcome events: {_joins_line(doc['joins'])}")
    lines.append("")
    lines += _table(*_version_rows(doc), indent="")
    for v in _candidates(doc):
        lines.append("")
        lines.append(f"{v['version']} against {doc['plan']['baseline']}: {(v['verdict'] or 'no verdict').upper()}")
        if v["metrics"]:
            lines += _table(METRIC_HEADER, metric_cells(v))
        lines += [f"  - {reason}" for reason in v["reasons"]]
    if doc.get("shadow"):
        lines += ["", *shadow_lines(doc["shadow"])]
    return "\n".join(lines) + "\n"


def shadow_lines(shadow: Doc) -> list[str]:
    """A shadow step's analysis (``catalog.analysis.shadow``'s document): the mirrored version's
    verdict, the copies' counts, its metrics and the reasons."""
    plan, counts = shadow["plan"], shadow["counts"]
    (version,) = shadow["versions"]
    share = f"{plan['percent']} % of requests" if plan["percent"] is not None else "requests"
    outputs = ", ".join(
        f"{name} {_percent(o['agreed'] / o['compared'] if o['compared'] else None)}"
        for name, o in sorted(counts["outputs"].items())
    )
    verdict = (version["verdict"] or "no verdict").upper()
    heading = (
        f"shadow step: {version['version']} mirrored ({share}), agreement at least {_percent(plan['min_agreement'])},"
        f" scores within {number(plan['max_abs_difference'])}: {verdict}"
    )
    copies = (
        f"  copies: {counts['copies']} sent ({counts['agreed']} agree, {counts['disagreed']} disagree,"
        f" {counts['errors']} failed), {counts['dropped']} dropped; agreement {_percent(counts['agreement'])}"
        f" (per output: {outputs or '-'}); p50 {number(counts['latency_ms']['p50'])} ms,"
        f" p99 {number(counts['latency_ms']['p99'])} ms"
    )
    return [
        heading,
        copies,
        *_table(METRIC_HEADER, metric_cells(version)),
        *(f"  - {reason}" for reason in version["reasons"]),
    ]


def _md(cell: str) -> str:
    """A Markdown table cell: pipes escaped, line breaks flattened, HTML's angle brackets escaped."""
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(_md(c) for c in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(_md(c) for c in row) + " |" for row in rows),
    ]


def markdown_report(doc: Doc) -> str:
    """The report as a pull request's comment: a heading, the verdicts first, then the tables."""
    lines = [f"### modelcat analyze: {_md(_title(doc))}", ""]
    for v in _candidates(doc):
        lines.append(f"- **{_md(v['version'])}**: **{(v['verdict'] or 'no verdict').upper()}**")
        lines += [f"  - {_md(reason)}" for reason in v["reasons"]]
    if doc.get("shadow"):
        (mirrored,) = doc["shadow"]["versions"]
        lines.append(
            f"- **{_md(mirrored['version'])}** (shadow step): **{(mirrored['verdict'] or 'no verdict').upper()}**"
        )
        lines += [f"  - {_md(reason)}" for reason in mirrored["reasons"]]
    lines += ["", f"Plan: {_md(plan_line(doc['plan']))}", "", *_md_table(*_version_rows(doc))]
    for v in _candidates(doc):
        if v["metrics"]:
            lines += ["", f"**{_md(v['version'])}** against {_md(doc['plan']['baseline'])}", ""]
            lines += _md_table(METRIC_HEADER, metric_cells(v))
    lines += ["", "Epochs (sample ratio per routing table):", ""]
    lines += _md_table(EPOCH_HEADER, [_epoch_cells(e) for e in doc["epochs"]]) if doc["epochs"] else ["none"]
    lines += ["", f"Outcome events: {_md(_joins_line(doc['joins']))}", ""]
    lines.append(f"Source: `{doc['source']['telemetry']}`")
    lines += [f"- {_md(note)}" for note in doc["source"]["notes"]]
    if doc["source"]["queries"] or doc["source"]["sql"]:
        queries = [
            f"{name}: {query}" for name, query in sorted({**doc["source"]["sql"], **doc["source"]["queries"]}.items())
        ]
        fence = "`" * max(3, 1 + max(len(run) for q in queries for run in re.findall("`+", q) or [""]))
        lines += ["", "<details><summary>Queries</summary>", "", fence, *queries, fence, "", "</details>"]
    return "\n".join(lines) + "\n"
