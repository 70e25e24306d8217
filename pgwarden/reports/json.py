"""The results document itself (``--json``).

What ``Results.to_json`` writes (``model.results.results_json``): pretty-printed but
for the findings, one compact line each; in one piece, or a finding at a time for a
file (``stream_json``), so writing it never holds the whole document.
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.model.results import Results, results_json, results_json_chunks


def render_json(results: Results) -> bytes:
    """Results as JSON in UTF-8, valid against the shipped schema."""
    return results_json(results)


def stream_json(results: Results) -> Iterator[bytes]:
    """``render_json``'s bytes, a finding at a time."""
    return results_json_chunks(results)
