"""The decision document for people: text for a terminal, Markdown for a pull request, one HTML file
that needs nothing but itself, each saying the verdicts, their reasons and where the numbers came from."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser

from catalog.analysis.document import analysis_document, dump_document
from catalog.analysis.html import html_report
from catalog.analysis.text import markdown_report, text_report
from tests.analysis.helpers import DECISION, LOOKS, OBSERVATIONS, OFFLINE, PLAN, with_name

EVIL = '<script>alert("x")</script> & | `'


def doc(plan=PLAN, observations=OBSERVATIONS, decision=DECISION) -> dict:
    built = analysis_document(plan, observations, decision, offline_metrics=OFFLINE, looks=LOOKS)
    return json.loads(dump_document(built))


def test_the_text_report_shows_per_version_a_table_the_verdict_its_reasons_and_the_source_with_its_queries():
    text = text_report(doc())
    lines = text.splitlines()
    assert lines[0] == "storefront / recommender (environment production), 2026-12-01T00:00:00Z .. 2026-12-04T00:00:00Z"
    assert "source: prometheus" in lines
    assert any(
        line.strip().startswith("requests: sum by (version) (increase(modelcat_router_requests_total") for line in lines
    )
    assert "  note: Prometheus at http://127.0.0.1:9090 answered for 2 versions" in lines
    header = next(line for line in lines if line.startswith("VERSION"))
    assert header.split()[:8] == ["VERSION", "ROLE", "UNITS", "REQUESTS", "ERRORS", "ERROR", "RATE", "P50"]
    baseline = next(line for line in lines if line.startswith("2.1.0 "))
    assert baseline.split()[:8] == ["2.1.0", "baseline", "2900", "3100", "12", "0.387%", "41.5", "180.2"]
    assert "ndcg@10=0.41" in baseline
    assert "2.2.0 against 2.1.0: PROMOTE" in lines
    assert "  - conversion: +3 points [+1.2, +4.8] at alpha 0.05" in lines
    primary = next(line for line in lines if line.strip().startswith("conversion "))
    assert primary.split() == ["conversion", "primary", "+0.03", "[+0.012,", "+0.048]", "0.0021", "-", "pass"]
    assert "SRM" not in text and text.count(" ok") >= 3


def test_the_markdown_report_leads_with_the_verdicts_and_escapes_table_cells():
    plan, observations = with_name(EVIL)
    md = markdown_report(doc(plan, observations))
    lines = md.splitlines()
    assert lines[0].startswith("### modelcat analyze: &lt;script&gt;")
    assert "<script>" not in md
    assert lines[2] == "- **2.2.0**: **PROMOTE**"
    assert "| 2.1.0 | baseline | 2900 | 3100 | 12 | 0.387% | 41.5 | 180.2 |" in md
    assert "| conversion | primary | +0.03 | [+0.012, +0.048] | 0.0021 | - | pass |" in md
    assert "<details><summary>Queries</summary>" in md and "```" in md


def test_a_query_holding_backticks_does_not_end_the_markdown_code_block():
    observations = replace(OBSERVATIONS, queries={"sql": "select ```x``` from t"})
    md = markdown_report(doc(observations=observations))
    assert "\n````\nsql: select ```x``` from t\n````\n" in md


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_html_page_draws_the_three_charts_inline_and_needs_no_network():
    page = html_report(doc())
    parser = _Elements()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    charts = [attrs["class"] for tag, attrs in parser.tags if tag == "svg"]
    assert charts == ["chart traffic", "chart metric", "chart metric", "chart latency"]
    assert tags.count("polygon") == 2 and tags.count("polyline") == 2  # an interval band and a line per metric
    assert "script" not in tags and "link" not in tags and "img" not in tags and "iframe" not in tags
    assert not re.search(r"\b(src|href)\s*=|url\(|@import", page)
    assert "default-src 'none'" in page
    assert "PROMOTE" in page and "every guardrail passed" in page
    assert "modelcat_router_requests_total{application=&quot;storefront&quot;}" in page


def test_the_html_page_escapes_user_data():
    plan, observations = with_name(EVIL)
    observations = replace(observations, notes=(EVIL,))
    decision = replace(DECISION, versions=(replace(DECISION.versions[0], reasons=(EVIL,)),))
    page = html_report(doc(plan, observations, decision))
    assert "<script" not in page and 'alert("x")' not in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; | `") >= 4  # title, h1, reason, note
    parser = _Elements()
    parser.feed(page)
    assert "script" not in {t for t, _ in parser.tags}


def test_the_html_page_with_no_outcome_data_says_so_instead_of_an_empty_chart():
    plan = replace(PLAN, primary=None, outcome_guardrails=())
    observations = replace(OBSERVATIONS, epochs=())
    decision = replace(DECISION, epochs=(), versions=(replace(DECISION.versions[0], metrics=()),))
    built = json.loads(dump_document(analysis_document(plan, observations, decision)))
    page = html_report(built)
    assert "No metric compares two arms yet" in page and "No routing table was recorded" in page
    assert page.count("<svg") == 1  # latency only


def test_the_text_report_counts_every_join_and_indents_a_query_of_several_lines():
    document = doc(observations=replace(OBSERVATIONS, queries={"units": "SELECT version\nFROM units"}))
    document["joins"]["elsewhere"] = 3  # a count a source adds is shown after the documented ones
    lines = text_report(document).splitlines()
    assert (
        "outcome events: 5200 events: 5000 attributed, 40 duplicates, 120 unattributed, 40 out of window, 7 late, "
        "3 elsewhere"
    ) in lines
    assert lines[lines.index("  units: SELECT version") + 1] == "      FROM units"


def test_an_epoch_without_units_is_drawn_as_such():
    empty = replace(OBSERVATIONS.epochs[0], observed={"2.1.0": 0, "2.2.0": 0})
    observations = replace(OBSERVATIONS, epochs=(empty,))
    decision = replace(DECISION, epochs=())
    page = html_report(doc(observations=observations, decision=decision))
    assert "no units" in page and page.count('class="chart traffic"') == 1


def test_the_text_report_shows_the_promql_and_leaves_the_warehouses_sql_to_the_json():
    observations = replace(
        OBSERVATIONS, queries={"requests": "sum by (version) (x)"}, sql={"units": "SELECT version FROM units"}
    )
    document = doc(observations=observations)
    assert document["source"]["sql"] == {"units": "SELECT version FROM units"}
    text = text_report(document)
    assert "  requests: sum by (version) (x)" in text.splitlines()
    assert "SELECT version FROM units" not in text
    assert "the warehouse's 1 SQL query: --format json (source.sql)" in text
    assert "SELECT version FROM units" in markdown_report(document) and "SELECT version FROM units" in html_report(
        document
    )
