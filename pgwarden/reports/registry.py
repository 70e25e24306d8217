"""The output formats the CLI offers: option name → renderer."""

from __future__ import annotations

from pgwarden.reports.base import Renderer
from pgwarden.reports.html import render_html
from pgwarden.reports.json import render_json
from pgwarden.reports.junit import render_junit
from pgwarden.reports.markdown import render_markdown
from pgwarden.reports.sarif import render_sarif

# Order is the order of the CLI options and of the demo's output files.
RENDERERS: dict[str, tuple[Renderer, str]] = {
    "json": (render_json, "results.json"),
    "sarif": (render_sarif, "results.sarif"),
    "html": (render_html, "report.html"),
    "junit": (render_junit, "junit.xml"),
    "markdown": (render_markdown, "summary.md"),
}
