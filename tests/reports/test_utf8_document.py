"""Documents joined from text and from chunks already encoded."""

from __future__ import annotations

from pgwarden.reports.view import utf8_document


def test_text_and_encoded_chunks_keep_their_order() -> None:
    chunks: list[str | bytes] = [
        "<p>caf",
        "é</p>",
        "→" * 70_000,
        b'{"name":"\xc3\xa9"}',
        "",
        b"",
        "end",
    ]
    expected = "".join(c.decode("utf-8") if isinstance(c, bytes) else c for c in chunks)
    assert utf8_document(chunks) == expected.encode("utf-8")
