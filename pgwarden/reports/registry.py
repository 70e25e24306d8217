"""The output formats the CLI offers: option name → renderer."""

from __future__ import annotations

from pgwarden.reports.base import Renderer
from pgwarden.reports.json import render_json

# Order is the order of the CLI options and of the demo's output files.
RENDERERS: dict[str, tuple[Renderer, str]] = {
    "json": (render_json, "results.json"),
}
