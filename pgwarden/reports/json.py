"""The results document itself (``--json``).

Byte for byte what ``Results.to_json`` writes, but serialised a finding at a time
into UTF-8: the findings are most of a large document, and serialising it whole holds
it as UTF-8, again as text, and once more to add the final newline.
"""

from __future__ import annotations

import io
from typing import Any

import pydantic_core

from pgwarden.model.results import Results

# Where the findings go in the document, at two spaces of indent: no string can hold
# a raw line break, and nested keys are indented further, so this is found only once.
_NO_FINDINGS = b'\n  "findings": []'


def render_json(results: Results) -> bytes:
    """Results as pretty-printed JSON in UTF-8, valid against the shipped schema."""
    if not results.findings:
        return _serialised(results) + b"\n"
    head, tail = _serialised(results.model_copy(update={"findings": ()})).split(_NO_FINDINGS)
    document = io.BytesIO()
    document.write(head)
    document.write(b'\n  "findings": [')
    for index, finding in enumerate(results.findings):
        # Each finding is indented two levels deeper than it is on its own.
        document.write(b",\n    " if index else b"\n    ")
        document.write(_serialised(finding).replace(b"\n", b"\n    "))
    document.write(b"\n  ]")
    document.write(tail)
    document.write(b"\n")
    return document.getvalue()


def _serialised(model: Any) -> bytes:
    """A model as ``Results.to_json`` serialises it (without the final newline)."""
    return pydantic_core.to_json(model, indent=2, by_alias=True, exclude_none=True)
