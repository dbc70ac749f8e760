"""The decision document as one self-contained HTML page: inline CSS and SVG charts, no script.

Opened from a file, it needs no network: its Content-Security-Policy forbids every fetch, and every
chart is drawn here as SVG (traffic share per epoch, each metric's difference from the baseline with
its anytime-valid interval over time, latency per version). Every string of the document (names,
reasons, queries: user data) is escaped. Pure: returns the page's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from catalog.analysis.text import METRIC_HEADER, live_text, metric_cells, number, plan_line, window

__all__ = ["PALETTE", "html_report"]

Doc = Mapping[str, Any]
# per version (baseline first): the line/bar colour and its light shade (declared shares, p50, intervals)
PALETTE: tuple[tuple[str, str], ...] = (
    ("#1f6fb4", "#a9cbe8"),
    ("#e8750c", "#f7c99c"),
    ("#2a9d3a", "#a8dcb0"),
    ("#8e4fc0", "#d3bce8"),
    ("#b8860b", "#ead9a6"),
    ("#c2185b", "#f0b3c9"),
)
LIMIT_COLOUR = "#d11a1a"
WIDTH, LEFT, RIGHT = 760, 150, 20
CSS = """
body{font:14px/1.45 system-ui,sans-serif;color:#1b1b1b;background:#fff;margin:24px auto;max-width:820px;padding:0 16px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left}
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#666}
.verdict{border:1px solid #ccc;border-left:6px solid #888;padding:8px 12px;margin:8px 0}
.promote{border-left-color:#2a9d3a}.rollback{border-left-color:#d11a1a}.hold{border-left-color:#b8860b}
svg{display:block;margin:6px 0}svg text{font:12px system-ui,sans-serif;fill:#333}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap;word-break:break-all;font-size:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _colours(doc: Doc) -> dict[str, tuple[str, str]]:
    return {v["version"]: PALETTE[i % len(PALETTE)] for i, v in enumerate(doc["versions"])}


def _svg(height: int, label: str, body: list[str], cls: str) -> str:
    return (
        f'<svg class="chart {cls}" role="img" aria-label="{_e(label)}" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, content: str, anchor: str = "start", colour: str = "") -> str:
    fill = f' style="fill:{colour}"' if colour else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{fill}>{_e(content)}</text>'


def _rect(x: float, y: float, w: float, h: float, fill: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}"/>'


def traffic_chart(doc: Doc) -> str:
    """Per epoch two bars: the declared weights (light) and the observed share of units (full colour)."""
    colours = _colours(doc)
    inner = WIDTH - LEFT - RIGHT
    body: list[str] = []
    y = 10
    for epoch in doc["epochs"]:
        body.append(_text(LEFT - 8, y + 14, _short(epoch["start"]), "end"))
        if epoch["srm"]:
            body.append(_text(LEFT - 8, y + 30, "sample ratio mismatch", "end", LIMIT_COLOUR))
        total_declared = sum(epoch["declared"].values()) or 1
        total_observed = sum(epoch["observed"].values())
        for row, (shares, total, shade) in enumerate(
            ((epoch["declared"], total_declared, 1), (epoch["observed"], total_observed, 0))
        ):
            x = float(LEFT)
            height = 10 if row == 0 else 18
            top = y + (0 if row == 0 else 13)
            for version in sorted(shares, key=lambda v: list(colours).index(v) if v in colours else len(colours)):
                width = inner * shares[version] / total if total else 0
                body.append(_rect(x, top, width, height, colours.get(version, PALETTE[-1])[shade]))
                label = f"{version} {100 * shares[version] / total:.1f}%" if total else ""
                if row == 1 and width > 8 + 7 * len(label):
                    body.append(_text(x + 4, top + 13, label, "start", "#fff"))
                x += width
            if row == 1 and not total:
                body.append(_text(LEFT + 4, top + 13, "no units", "start"))
        y += 44
    legend = _legend(colours, y + 4)
    return _svg(y + 24, "traffic share per epoch: declared (thin) and observed (thick)", body + legend, "traffic")


def _legend(colours: Mapping[str, tuple[str, str]], y: float) -> list[str]:
    out, x = [], float(LEFT)
    for version, (full, _) in colours.items():
        out += [_rect(x, y - 10, 12, 12, full), _text(x + 16, y, version)]
        x += 24 + 8 * len(version)
    return out


def _short(time: str) -> str:
    """An RFC 3339 time to the minute: 2026-12-01 00:00."""
    return time[:16].replace("T", " ")


def _seconds(time: str, fallback: float) -> float:
    try:
        return datetime.fromisoformat(time).timestamp()
    except (TypeError, ValueError):
        return fallback


def _series(doc: Doc, version: str, metric: str) -> list[tuple[float, float, tuple[float, float] | None]]:
    """(x, difference, interval) of ``metric`` of ``version`` at each look; else its final value."""
    points = []
    for i, p in enumerate(doc["history"]):
        if p["version"] != version:
            continue
        for m in p["metrics"]:
            if m["name"] == metric and m["difference"] is not None:
                iv = m["interval"]
                interval = (iv[0], iv[1]) if iv and None not in iv else None
                points.append((_seconds(p["time"], float(i)), m["difference"], interval))
    if not points:
        final = next(v for v in doc["versions"] if v["version"] == version)
        for m in final["metrics"]:
            if m["name"] == metric and m["difference"] is not None:
                iv = m["interval"]
                interval = (iv[0], iv[1]) if iv and None not in iv else None
                points.append((_seconds(doc["until"] or "", 0.0), m["difference"], interval))
    return points


def metric_chart(doc: Doc, version: str, metric: str) -> str:
    """``metric``'s difference (candidate - baseline) over time: the line, its interval as a band, and 0."""
    full, light = _colours(doc)[version]
    points = _series(doc, version, metric)
    height, top, bottom = 190, 14, 160
    values = [0.0] + [d for _, d, _ in points] + [b for _, _, iv in points if iv for b in iv]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad
    xs = [x for x, _, _ in points]
    x0, x1 = min(xs), max(xs)
    inner = WIDTH - LEFT - RIGHT

    def sx(x: float) -> float:
        return LEFT + (inner * (x - x0) / (x1 - x0) if x1 > x0 else inner / 2)

    def sy(v: float) -> float:
        return bottom - (bottom - top) * (v - low) / (high - low)

    body = [_rect(LEFT, top, inner, bottom - top, "#fafafa")]
    banded = [(x, iv) for x, _, iv in points if iv]
    if len(banded) >= 2:
        outline = [(sx(x), sy(iv[1])) for x, iv in banded] + [(sx(x), sy(iv[0])) for x, iv in reversed(banded)]
        body.append(f'<polygon class="interval" fill="{light}" points="{_points(outline)}"/>')
    elif banded:
        x, iv = banded[0]
        body.append(_rect(sx(x) - 8, sy(iv[1]), 16, sy(iv[0]) - sy(iv[1]), light))
    body.append(
        f'<line x1="{LEFT}" x2="{LEFT + inner}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="#555" stroke-dasharray="4 3"/>'
    )
    if len(points) >= 2:
        line = [(sx(x), sy(d)) for x, d, _ in points]
        body.append(
            f'<polyline class="difference" fill="none" stroke="{full}" stroke-width="3" points="{_points(line)}"/>'
        )
    for x, d, _ in points[-1:]:
        body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(d):.1f}" r="5" fill="{full}"/>')
    body += [
        _text(LEFT - 8, top + 10, number(high, True), "end"),
        _text(LEFT - 8, bottom, number(low, True), "end"),
        _text(LEFT - 8, sy(0) + 4, "0", "end"),
        _text(LEFT, bottom + 18, _short_time(doc, points[0][0] if points else None)),
        _text(LEFT + inner, bottom + 18, _short_time(doc, points[-1][0] if points else None), "end"),
        _text(LEFT - 8, (top + bottom) / 2 + 20, f"{version} - {doc['plan']['baseline']}", "end"),
    ]
    label = f"{metric}: difference of {version} from {doc['plan']['baseline']} with its interval, over time"
    return _svg(height, label, body, "metric")


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _short_time(doc: Doc, seconds: float | None) -> str:
    if seconds is None:
        return ""
    times = [p["time"] for p in doc["history"]] + [doc["until"] or ""]
    return _short(next((t for t in times if _seconds(t, -1.0) == seconds), ""))


def latency_chart(doc: Doc) -> str:
    """Per version p50 (light) and p99 (full) latency bars; the p99 limit as a red dashed line."""
    colours = _colours(doc)
    limit = doc["plan"]["guardrails"]["max_p99_latency_ms"]
    values = [v["latency_ms"][q] for v in doc["versions"] for q in ("p50", "p99") if v["latency_ms"][q] is not None]
    top_value = max([*values, limit or 0]) * 1.15 or 1.0
    height, top, bottom, bar = 200, 14, 170, 34
    body = []
    x = LEFT + 20.0
    for v in doc["versions"]:
        full, light = colours[v["version"]]
        for q, fill in (("p50", light), ("p99", full)):
            value = v["latency_ms"][q]
            if value is None:
                body.append(_text(x + bar / 2, bottom - 4, "n/a", "middle"))
            else:
                h = (bottom - top) * value / top_value
                body.append(_rect(x, bottom - h, bar, h, fill))
                body.append(_text(x + bar / 2, bottom - h - 4, f"{number(value)}", "middle"))
            body.append(_text(x + bar / 2, bottom + 14, q, "middle"))
            x += bar + 4
        body.append(_text(x - bar - 4, bottom + 28, v["version"], "middle"))
        x += 40
    body.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{top}" y2="{bottom}" stroke="#555"/>')
    body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#555"/>')
    body.append(_text(LEFT - 8, top + 10, f"{number(top_value)} ms", "end"))
    if limit is not None:
        y = bottom - (bottom - top) * limit / top_value
        body.append(
            f'<line class="limit" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{LIMIT_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>'
        )
        body.append(_text(LEFT - 8, y + 4, f"p99 limit {limit} ms", "end", LIMIT_COLOUR))
    return _svg(height + 20, "latency per version: p50 and p99 in milliseconds", body, "latency")


def _cells(row: Sequence[Any], header: bool = False) -> str:
    tag = "th" if header else "td"
    return "<tr>" + "".join(f"<{tag}>{_e(c)}</{tag}>" for c in row) + "</tr>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return "<table>" + _cells(header, True) + "".join(_cells(r) for r in rows) + "</table>"


def _verdicts(doc: Doc) -> list[str]:
    out = []
    for v in doc["versions"]:
        if v["role"] != "candidate":
            continue
        verdict = v["verdict"] or "none"
        reasons = "".join(f"<li>{_e(r)}</li>" for r in v["reasons"])
        out.append(
            f'<div class="verdict {_e(verdict)}"><strong>{_e(v["version"])}</strong> against '
            f"{_e(doc['plan']['baseline'])}: <strong>{_e(verdict.upper())}</strong><ul>{reasons}</ul></div>"
        )
    return out


def _version_table(doc: Doc) -> str:
    colours = _colours(doc)
    live = any(v["live_metrics"] for v in doc["versions"])
    rows = []
    for v in doc["versions"]:
        outcomes = "; ".join(f"{k}: n={s['n']}, mean={number(s['mean'])}" for k, s in sorted(v["outcomes"].items()))
        offline = " ".join(f"{k}={number(x)}" for k, x in sorted(v["offline_metrics"].items()))
        rate = v["error_rate"]
        rows.append(
            f'<tr><td><span class="swatch" style="background:{colours[v["version"]][0]}"></span>{_e(v["version"])}</td>'
            + "".join(
                f'<td class="num">{_e(c)}</td>'
                for c in (v["units"], v["requests"], v["errors"], "-" if rate is None else f"{100 * rate:.3g}%")
            )
            + f'<td class="num">{_e(number(v["latency_ms"]["p50"]))}</td>'
            f'<td class="num">{_e(number(v["latency_ms"]["p99"]))}</td>'
            f"<td>{_e(v['role'])}</td><td>{_e(outcomes or '-')}</td><td>{_e(offline or '-')}</td>"
            + (f"<td>{_e(live_text(v))}</td>" if live else "")
            + "</tr>"
        )
    header: tuple[str, ...] = (
        "version",
        "units",
        "requests",
        "errors",
        "error rate",
        "p50 ms",
        "p99 ms",
        "role",
        "outcomes",
        "offline",
    )
    header += ("live",) if live else ()
    return "<table>" + _cells(header, True) + "".join(rows) + "</table>"


def _metric_tables(doc: Doc) -> list[str]:
    out = []
    for v in doc["versions"]:
        if v["role"] != "candidate" or not v["metrics"]:
            continue
        rows = [(*cells, m["reason"]) for cells, m in zip(metric_cells(v), v["metrics"], strict=True)]
        out.append(f"<h3>{_e(v['version'])} against {_e(doc['plan']['baseline'])}</h3>")
        out.append(_table((*(h.lower() for h in METRIC_HEADER), "reason"), rows))
    return out


def _metric_charts(doc: Doc) -> list[str]:
    out = []
    for v in doc["versions"]:
        if v["role"] != "candidate":
            continue
        for m in v["metrics"]:
            if _series(doc, v["version"], m["name"]):
                out.append(f"<h3>{_e(m['name'])} ({_e(m['kind'])}): {_e(v['version'])}</h3>")
                out.append(metric_chart(doc, v["version"], m["name"]))
    return out or ['<p class="muted">No metric compares two arms yet (no outcome data).</p>']


def html_report(doc: Doc) -> str:
    """The whole page (see the module docstring)."""
    title = f"{doc['application']} / {doc['model']}"
    source = doc["source"]
    queries = "\n".join(f"{k}: {q}" for k, q in sorted(source["queries"].items()))
    sql = "\n".join(f"{k}: {q}" for k, q in sorted(source["sql"].items()))
    epochs = [
        (e["start"], e["end"], " ".join(f"{k}={w}%" for k, w in sorted(e["declared"].items())),
         " ".join(f"{k}={n}" for k, n in sorted(e["observed"].items())), number(e["chi_square"]),
         number(e["p_value"]), "SRM" if e["srm"] else "ok")
        for e in doc["epochs"]
    ]  # fmt: skip
    joins = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in sorted(doc["joins"].items()))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>modelcat analyze: {_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">environment {_e(doc["environment"])}; {_e(window(doc))}; schema {_e(doc["schema"])}</p>',
        f"<p>{_e(plan_line(doc['plan']))}</p>",
        *_verdicts(doc),
        "<h2>Traffic share per epoch</h2>",
        traffic_chart(doc) if doc["epochs"] else '<p class="muted">No routing table was recorded.</p>',
        "<h2>Differences from the baseline over time</h2>",
        *_metric_charts(doc),
        "<h2>Latency per version</h2>",
        latency_chart(doc),
        "<h2>Versions</h2>",
        _version_table(doc),
        *_metric_tables(doc),
        "<h2>Epochs</h2>",
        _table(("start", "end", "declared", "observed units", "chi-square", "p", "check"), epochs),
        "<h2>Source</h2>",
        f"<p>telemetry: <strong>{_e(source['telemetry'])}</strong></p>",
        *(f"<p>{_e(note)}</p>" for note in source["notes"]),
        f"<pre>{_e(queries)}</pre>" if queries else "",
        f"<details><summary>the warehouse's SQL</summary><pre>{_e(sql)}</pre></details>" if sql else "",
        f"<p>outcome events: {_e(joins)}</p>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
