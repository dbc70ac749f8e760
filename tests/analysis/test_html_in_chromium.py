"""The HTML report opened in a real browser: Debian's headless Chromium takes a screenshot of the page,
and the charts' colours are on it, where the same page without its SVG charts has (almost) none.

Chromium runs offline: its own profile in the test's folder, every host name resolving to nothing,
no background networking; the page itself forbids every fetch (its Content-Security-Policy)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from catalog.analysis.document import analysis_document, dump_document
from catalog.analysis.html import LIMIT_COLOUR, PALETTE, html_report
from tests.analysis.helpers import DECISION, LOOKS, OBSERVATIONS, OFFLINE, PLAN
from tests.analysis.png import colour_counts, read_png

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
WINDOW = (900, 1800)


def screenshot(page: str, folder: Path) -> dict[str, int]:
    """The colours of ``page`` as Chromium draws it (pixels per ``#rrggbb``)."""
    folder.mkdir()
    html, png = folder / "report.html", folder / "shot.png"
    html.write_text(page, encoding="utf-8")
    argv = [
        str(CHROMIUM), *OFFLINE_FLAGS, f"--user-data-dir={folder / 'profile'}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={png}", html.as_uri(),
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(folder), "XDG_CONFIG_HOME": str(folder / "config")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env, check=False)
    assert png.exists(), f"chromium wrote no screenshot (exit {done.returncode}):\n{done.stderr[-2000:]}"
    image = read_png(png.read_bytes())
    assert image.shape[:2] == (WINDOW[1], WINDOW[0])
    return colour_counts(image)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps installs it)")
def test_the_html_report_draws_its_charts_in_headless_chromium(tmp_path: Path):
    document = json.loads(
        dump_document(analysis_document(PLAN, OBSERVATIONS, DECISION, offline_metrics=OFFLINE, looks=LOOKS))
    )
    page = html_report(document)
    without_charts = re.sub(r"<svg\b.*?</svg>", "", page, flags=re.DOTALL)
    assert page.count("<svg") == 4 and "<svg" not in without_charts

    drawn = screenshot(page, tmp_path / "charts")
    bare = screenshot(without_charts, tmp_path / "bare")

    added = {
        colour: drawn.get(colour, 0) - bare.get(colour, 0) for (full, light) in PALETTE[:2] for colour in (full, light)
    }
    (_, base_light), (_, cand_light) = PALETTE[:2]
    # traffic bars (observed: full colours, declared: light), latency bars (p99 full, p50 light),
    # the candidate's interval bands (its light colour) and difference lines (its full colour)
    assert all(n >= 1000 for n in added.values()), added
    assert added[cand_light] > added[base_light], "the interval bands are drawn in the candidate's light colour"
    assert drawn.get(LIMIT_COLOUR, 0) - bare.get(LIMIT_COLOUR, 0) >= 100, "the p99 limit line"
    # the screenshot is not a blank page: its text and tables are there in both
    assert bare.get("#ffffff", 0) < WINDOW[0] * WINDOW[1] and bare.get("#f4f4f4", 0) > 1000
