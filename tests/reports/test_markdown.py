"""The markdown summary: compact, escaped, capped."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from pgwarden.model.results import Results
from pgwarden.reports import markdown
from pgwarden.reports.markdown import render_markdown
from pgwarden.reports.templating import markdown_code_block, markdown_inline
from tests.reports.conftest import HOSTILE, large_results


def test_markdown_golden(results: Results, golden: Callable[[str, str], None]) -> None:
    golden("summary.md", render_markdown(results))


def test_summary_has_counts_failing_findings_and_fixes(results: Results) -> None:
    text = render_markdown(results)
    assert text.startswith("### ❌ pgwarden: 10 failing findings\n")
    assert "| **10** | 2 | 6 | 0 | 2 | 1 | 1 | 8 |" in text
    # A rule whose results name its documentation page links to it; the others do not.
    docs = "https://git.example.com/pgwarden/blob/v0.1.0/docs/rules/PGW-ISO-001.md"
    assert f"[PGW-ISO-001]({docs})" in text
    assert "| PGW-ROLE-002 |" in text and "[PGW-ROLE-002]" not in text
    assert "REVOKE CONNECT ON DATABASE temporal FROM PUBLIC;" in text
    assert "> [!WARNING]" in text  # the scan is incomplete
    assert "zep moves to its own server in Q1" in text
    # The baseline entry no longer found is counted, not listed as failing.
    assert "**5 new**, 5 unchanged, 1 no longer found" in text
    assert "NOCREATEDB" not in text
    assert "- Since the previous run: **5 new**, 1 resolved" in text
    assert "**1 expired**, 1 stale" in text


def test_a_clean_scan_says_so(results: Results) -> None:
    clean = results.model_copy(
        update={
            "findings": (),
            "summary": results.summary.model_copy(
                update={"fail": 0, "error": 0, "waived": 0, "by_severity": {}}
            ),
            "scan": results.scan.model_copy(update={"complete": True}),
            "servers": tuple(s.model_copy(update={"complete": True}) for s in results.servers),
        }
    )
    text = render_markdown(clean)
    assert text.startswith("### ✅ pgwarden: no failing findings\n")
    assert "#### Failing findings" not in text


def test_long_lists_are_capped() -> None:
    text = render_markdown(large_results(5_000))
    assert len(text) < 65_536  # a GitHub comment
    assert "…and 3950 more failing findings" in text


def test_hostile_names_are_inert(hostile_results: Results) -> None:
    rendered = render_markdown(hostile_results)
    # Fixes are verbatim inside fences, where markdown shows every character as is.
    fences = re.findall(r"^(`{3,})\n(.*?)\n\1$", rendered, flags=re.MULTILINE | re.DOTALL)
    assert any(HOSTILE["temporal_app"] in body for _fence, body in fences)
    text = re.sub(r"^(`{3,})\n.*?\n\1$", "", rendered, flags=re.MULTILINE | re.DOTALL)
    for raw in ("<script", "<img", "</script", "@octo-org"):
        assert raw not in text
    assert not re.search(r"(?<!\\)\]\(javascript:", text)  # no live link from data
    assert "&lt;script&gt;window.\\_\\_pwned=1&lt;/script&gt;" in text
    assert "\\*x\\*\\|y \\`z\\` &#64;octo-org/team" in text
    assert "\u202e" not in text
    assert "⟨U+202E⟩txt" in text
    # Every table row keeps the header's column count: no unescaped | from data.
    for table in re.findall(r"(?:^\|.*\|$\n?)+", text, flags=re.MULTILINE):
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(widths) == 1, table


def test_markdown_helpers() -> None:
    assert markdown_inline("a_b\n# c <d>") == "a\\_b # c &lt;d&gt;"
    assert markdown_inline("x\u202ey\x07") == "x⟨U+202E⟩y⟨U+0007⟩"
    block = markdown_code_block("SELECT 1; -- ``` inside")
    assert block.startswith("````\n") and block.endswith("\n````")


def test_listed_count_is_a_setting(monkeypatch: pytest.MonkeyPatch, results: Results) -> None:
    monkeypatch.setattr(markdown, "LISTED", 2)
    text = render_markdown(results)
    assert "…and 8 more failing findings" in text


def test_many_of_one_kind_is_told_once_and_does_not_crowd_out_the_rest() -> None:
    text = render_markdown(large_results(2_000))
    assert "#### Many of one kind" in text
    stories = text.split("#### Many of one kind", 1)[1].split("####", 1)[0]
    # One row per rule, with its count and its first examples.
    assert stories.count("| 🟥 critical |") + stories.count("| 🟧 high |") >= 1
    assert "database/db\\_000000" in stories  # markdown-escaped
    failing = text.split("#### Failing findings", 1)[1].split("<details>", 1)[0]
    rows = [line for line in failing.splitlines() if line.startswith("| ") and "PGW-" in line]
    per_rule: dict[str, int] = {}
    for row in rows:
        rule = re.search(r"PGW-[A-Z]+-\d{3}", row)
        assert rule is not None
        per_rule[rule.group()] = per_rule.get(rule.group(), 0) + 1
    assert max(per_rule.values()) <= markdown.PER_RULE
    assert len(per_rule) > 1


def test_few_findings_tell_no_story(results: Results) -> None:
    assert "Many of one kind" not in render_markdown(results)
