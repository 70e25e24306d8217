"""The results document itself (``--json``)."""

from __future__ import annotations

from pgwarden.scanner.results import Results


def render_json(results: Results) -> str:
    """Results as pretty-printed JSON, valid against the shipped schema."""
    return results.to_json()
