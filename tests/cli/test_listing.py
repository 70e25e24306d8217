"""What the terminal shows: a summary that does not grow with the findings, or every one.

No server needed: results documents of a few hundred and of thousands of findings.
"""

from __future__ import annotations

import pytest

from pgwarden.cli.listing import MOST_SEVERE, FindingsText, cells, compliance_lines, printable
from pgwarden.model.compliance import compliance_of
from pgwarden.model.results import Results
from tests.reports.conftest import large_results

WRITTEN = [("results JSON", "results.json"), ("HTML report", "report.html")]


def _with_message(results: Results, message: str) -> Results:
    first = results.findings[0].model_copy(update={"message": message})
    return results.model_copy(update={"findings": (first, *results.findings[1:])})


def test_the_summary_is_the_same_size_for_500_and_5000_findings() -> None:
    small = FindingsText(large_results(500), 80).summary(WRITTEN)
    big = FindingsText(large_results(5_000), 80).summary(WRITTEN)
    assert len(big) == len(small)
    assert len(big) < 100  # a screenful or two, whatever the findings
    assert all(len(line) <= 80 for line in big)
    text = "\n".join(big)
    assert "Failing, by rule:" in text
    assert "Many of one kind:" in text  # every rule has hundreds of findings here
    assert f"… and {5_000 * 8 // 10 - MOST_SEVERE:,} more failing findings" in text
    assert "  report.html (HTML report)" in text


def test_the_listing_shows_every_finding_in_80_columns() -> None:
    results = large_results(300)
    lines = list(FindingsText(results, 80).listing())
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    for finding in results.findings:
        assert finding.resource in text
    # A message is wrapped, not cut: its words are all there, in order.
    first = results.findings[0].message.split()
    assert " ".join(first) in " ".join(text.split())


def test_names_cannot_drive_the_terminal() -> None:
    hostile = _with_message(large_results(10), "role '\x1b[2J\x1b[31mevil\u202e' is bad")
    text = "\n".join(FindingsText(hostile, 80).listing())
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[2J" in text and "\\u202e" in text
    assert printable("a\nb\tc") == "a\\x0ab\\x09c"


def test_colour_only_on_a_terminal() -> None:
    results = large_results(40)
    plain = "\n".join(FindingsText(results, 80).summary(WRITTEN))
    coloured = "\n".join(FindingsText(results, 80, color=True).summary(WRITTEN))
    assert "\x1b[" not in plain
    assert "\x1b[1;31mcritical" in coloured


def test_wide_characters_take_two_columns() -> None:
    # An elephant emoji and CJK take two cells each; a combining accent and a zero-width
    # joiner none: the line is measured as a terminal draws it, not in characters.
    assert cells("ab") == 2
    assert cells("🐘") == 2 and cells("数据") == 4
    assert cells("e\u0301") == 1 and cells("a\u200db") == 2
    name = "🐘" * 40 + "数据库" * 10
    results = _with_message(large_results(10), f"role {name!r} of app 'x' is bad")
    listing = list(FindingsText(results, 80).listing())
    summary = FindingsText(results, 80).summary(WRITTEN)
    assert all(cells(line) <= 80 for line in listing + summary)
    # Wrapped, not lost: every character of the name is in the listing.
    assert name in "".join(line.strip() for line in listing)


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_the_compliance_table_fits_the_width(width: int) -> None:
    results = large_results(50)
    results = results.model_copy(update={"compliance": compliance_of(results)})
    assert results.compliance
    lines = compliance_lines(results, width)
    assert all(cells(line) <= width for line in lines), "\n".join(lines)
    header, rows = lines[2], lines[3:]
    assert header.split()[1] == ("id" if width >= 120 else "pass")
    assert len(rows) == len(results.compliance)
    for row, framework in zip(rows, results.compliance, strict=True):
        # Every framework has its row and its counts; its name is cut only when too long.
        counts = [str(count) for _status, count in framework.summary.by_status()]
        assert row.split()[-len(counts) :] == counts
        name = framework.short_name or framework.name
        assert row[2:].startswith(name) or row[2:].split("…")[0] in name


def test_long_names_are_cut_in_the_middle_so_places_stay_apart() -> None:
    # Names near PostgreSQL's 63 bytes, alike but for their end: cut at the end, every
    # place of the summary would read the same.
    long = "Contoso Zürich Checkout Service Production EU 000_db"
    base = large_results(400)
    findings = tuple(
        f.model_copy(
            update={
                "resource": f"database/{long}{i:04d}",
                "principal": f"role/former.employee.{i:05d}@contoso-retail.onmicrosoft.com",
            }
        )
        for i, f in enumerate(base.findings)
    )
    results = base.model_copy(update={"findings": findings})
    for width in (80, 60):
        summary = FindingsText(results, width).summary(WRITTEN)
        assert all(cells(line) <= width for line in summary)
        start = summary.index("Most severe:") + 1
        lines = summary[start : start + 2 * MOST_SEVERE : 2]
        # Past severity, rule and server: the database, cut in the middle.
        places = [line.split(maxsplit=3)[3] for line in lines]
        assert all(p.startswith("dat") and "…" in p for p in places)
        # The end of each database's name shows: as many ends as places.
        ends = {p.split(" ← ")[0][-4:] for p in places}
        assert len(ends) == len(places) == MOST_SEVERE
        stories = [line for line in summary if line.startswith("    e.g. ")]
        assert stories and all(s.split(" ← ")[0][-4:].isdigit() for s in stories)
