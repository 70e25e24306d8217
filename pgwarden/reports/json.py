"""The results document itself (``--json``).

What ``Results.to_json`` writes (``model.results.results_json``): pretty-printed but
for the findings, one compact line each, serialised a finding at a time into UTF-8.
"""

from __future__ import annotations

from pgwarden.model.results import Results, results_json


def render_json(results: Results) -> bytes:
    """Results as JSON in UTF-8, valid against the shipped schema."""
    return results_json(results)
