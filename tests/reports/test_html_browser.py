"""The HTML report in a real browser: headless Debian Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pgwarden.model.results import Results
from pgwarden.reports.access_matrix import AccessMatrix, server_access_matrix
from pgwarden.reports.html import render_html
from pgwarden.reports.html_data import PLAIN_FINDINGS
from pgwarden.reports.templating import reveal_invisible
from tests.reports.conftest import (
    HOSTILE,
    hostile_large_results,
    large_results,
    wide_matrix_results,
    with_pass_records,
)

pytestmark = pytest.mark.browser


def new_page(browser: Any, *, bypass_csp: bool) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=bypass_csp)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    opened.errors = errors
    yield opened
    context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that records script errors, with the report's CSP off.

    Playwright's waiting helpers evaluate strings, which the report's policy forbids;
    and the escaping tests must pass on escaping alone, not because CSP saved them.
    """
    yield from new_page(browser, bypass_csp=True)


@pytest.fixture
def strict_page(browser: Any) -> Iterator[Any]:
    """A page that enforces the report's Content-Security-Policy, as a browser does."""
    yield from new_page(browser, bypass_csp=False)


def open_report(page: Any, results: Results, tmp_path: Path, name: str = "report.html") -> None:
    path = tmp_path / name
    path.write_bytes(render_html(results))
    page.goto(path.as_uri())
    page.wait_for_selector("#pgw-count[data-matching]")


def matching(page: Any) -> int:
    return int(page.get_attribute("#pgw-count", "data-matching"))


TWO_FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def shown_text(page: Any, selector: str) -> str:
    """The text of ``selector``'s first match as a reader sees it, scrolled to.

    A section off screen is laid out only when scrolled to (``content-visibility:
    auto``), and until then its ``innerText`` is empty: scroll, let two frames pass.
    """
    found = page.locator(selector).first
    found.scroll_into_view_if_needed()
    page.evaluate(
        "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )
    text: str = found.inner_text()
    return text


def page_text(page: Any) -> str:
    """All the page's text as a reader copies it (select all), laid out or not."""
    text: str = page.evaluate(
        """() => {
          const selection = getSelection();
          selection.selectAllChildren(document.body);
          const text = selection.toString();
          selection.removeAllRanges();
          return text;
        }"""
    )
    return text


# The grid report.js drew: database of each column, then each row's cells.
DRAWN_GRID = """grid => ({
  columns: Array.from(grid.querySelectorAll("thead th .db"), e => e.textContent),
  rows: Array.from(grid.querySelectorAll("tbody tr"), tr => [
    tr.querySelector("th").textContent,
    Array.from(tr.querySelectorAll("td"), td => [td.className, td.textContent, td.title]),
  ]),
})"""


def drawn_grid(page: Any, matrix: AccessMatrix) -> tuple[list[int], list[int]]:
    """The columns and rows drawn, each cell checked against the matrix; as indexes."""
    grid = page.locator(".explorer [data-role=grid]").evaluate(DRAWN_GRID)
    column_of = {name: column for column, (name, _owner) in enumerate(matrix.databases)}
    columns = [column_of[name] for name in grid["columns"]]
    rows = []
    for principal, cells in grid["rows"]:
        row = matrix.principals.index(principal)
        rows.append(row)
        assert len(cells) == len(columns)
        for column, drawn in zip(columns, cells, strict=True):
            cell = matrix.cell(row, column)
            kind = f"cell {cell.kind}" + (" bad" if cell.violation else "")
            assert drawn == [kind, cell.label, cell.explanation]
    return columns, rows


def explorer_shows(page: Any, columns: int) -> None:
    page.wait_for_function(
        f"document.querySelector('.explorer [data-role=count]').dataset.columns === '{columns}'"
    )


def test_filters_search_and_details(
    page: Any, results: Results, tmp_path: Path, artifacts: Path
) -> None:
    open_report(page, results, tmp_path)
    assert matching(page) == len(results.findings) == 13
    assert page.locator("#pgw-list details.finding").count() == 13
    assert page.locator("#pgw-list details.gone").count() == 1  # fixed since the baseline
    assert page.locator("table.matrix").count() == 2
    assert "Not isolated" in shown_text(page, "#access")

    page.uncheck("#pgw-severity input[data-name=low]")
    page.wait_for_function("document.querySelector('#pgw-count').dataset.matching === '11'")
    page.select_option("#pgw-server", label="legacy-db (2)")
    page.wait_for_function("document.querySelector('#pgw-count').dataset.matching === '1'")
    assert "could not be evaluated" in shown_text(page, "#pgw-list")

    page.click("#pgw-reset")
    page.fill("#pgw-search", "temporal_app")  # in resources, principals and fixes
    page.wait_for_function("document.querySelector('#pgw-count').dataset.matching === '5'")
    headers = page.locator("#pgw-list h3.family").all_inner_texts()
    assert [h.split("\n")[0] for h in headers] == ["Roles and privileges", "Database isolation"]
    page.fill("#pgw-search", "TEMPORAL_APP  membership")  # every word, any case
    page.wait_for_function("document.querySelector('#pgw-count').dataset.matching === '2'")
    page.fill("#pgw-search", "ctxeco-DB")  # a server's name, in no finding's details
    page.wait_for_function("document.querySelector('#pgw-count').dataset.matching === '11'")
    page.fill("#pgw-search", "Cluster-Wide")  # a rule's title
    page.wait_for_function("document.querySelector('#pgw-count').dataset.matching === '2'")

    page.click("#pgw-reset")
    page.uncheck("#pgw-status input[data-name=fail]")
    page.wait_for_function("document.querySelector('#pgw-count').dataset.matching === '2'")
    waived = page.locator("details.status-waived")
    waived.locator("summary").click()
    page.wait_for_selector("details.status-waived .fix")
    body = waived.inner_text()
    assert "zep moves to its own server in Q1" in body
    assert "platform-team@example.com" in body and "2027-03-31" in body
    assert "REVOKE CONNECT ON DATABASE zep FROM PUBLIC;" in body
    assert "CIS PostgreSQL 4.7" in body
    assert "2026-10-02 09:00:00 UTC (105 days before this scan)" in body
    waived.locator(".fix button").click()
    page.wait_for_function(
        "document.querySelector('details.status-waived .fix button').textContent !== 'Copy'"
    )
    page.screenshot(path=str(artifacts / "report-filtered.png"), full_page=True)
    assert page.errors == []


def test_overview_screenshot_and_pdf(
    page: Any, results: Results, tmp_path: Path, artifacts: Path
) -> None:
    open_report(page, results, tmp_path)
    page.locator("#pgw-list details summary").first.click()
    page.wait_for_selector("#pgw-list .fix")
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    # Printing shows every matching finding expanded and hides the controls.
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert page.locator("#pgw-list details[open]").count() == 13
    page.emulate_media(media="print")
    assert not page.is_visible("#pgw-filters")
    # Every section is laid out for print, not only those scrolled to on screen.
    assert "Not isolated" in page.inner_text("#access")
    assert "Every selected rule on every server" in page.inner_text("#coverage")
    page.pdf(path=str(artifacts / "report.pdf"), format="A4", print_background=True)
    assert (artifacts / "report.pdf").stat().st_size > 10_000
    assert page.errors == []


def test_the_report_runs_under_its_own_content_security_policy(
    strict_page: Any, results: Results, tmp_path: Path
) -> None:
    open_report(strict_page, results, tmp_path)
    assert matching(strict_page) == 13
    strict_page.locator("#pgw-list details summary").first.click()
    strict_page.wait_for_selector("#pgw-list .fix")  # the details are drawn on "toggle"
    assert strict_page.errors == []  # a violation would be reported here


@pytest.mark.parametrize("csp", ["enforced", "bypassed"])
def test_hostile_names_are_inert_text(
    browser: Any, csp: str, hostile_results: Results, tmp_path: Path, artifacts: Path
) -> None:
    page = next(new_page(browser, bypass_csp=csp == "bypassed"))
    open_report(page, hostile_results, tmp_path, "hostile.html")
    page.select_option("#pgw-app-filter", index=2)
    page.click("#pgw-reset")
    rows = page.locator("#pgw-list details").all()
    for details in rows:
        details.locator("summary").click()
    # Details are drawn on "toggle", in click order; the last one means all are there.
    page.locator("#pgw-list .body").nth(len(rows) - 1).wait_for()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    # Nothing from the data became an element.
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert page.evaluate("document.scripts.length") == 2
    text = page_text(page)
    assert HOSTILE["secai-radar"] in text
    assert HOSTILE["ctxEco"] in shown_text(page, "table.matrix")
    # Shown whole, with the right-to-left override and the BEL made visible.
    assert reveal_invisible(HOSTILE["zep_app"]) in text
    assert "Every selected rule on every server" in text  # the last section, too
    assert "\u27e8U+202E\u27e9" in text and "\u202e" not in text
    assert reveal_invisible(HOSTILE["temporal_app"]) in text
    page.screenshot(path=str(artifacts / f"report-hostile-csp-{csp}.png"), full_page=True)
    assert page.errors == []
    page.context.close()


def test_fifty_thousand_findings_stay_usable(page: Any, tmp_path: Path, artifacts: Path) -> None:
    big = large_results(50_000)
    open_report(page, big, tmp_path, "large.html")
    assert matching(page) == 50_000
    assert page.locator("#pgw-list details").count() == 100  # one page, not 50,000 rows

    # The search index is built in the background once the first page is shown.
    page.wait_for_selector("body[data-indexed]", state="attached")
    searched = [f for f in big.findings if "'reporting_3'" in f.message]
    not_critical = [f for f in searched if f.severity != "critical"]
    steps: list[tuple[Callable[[], None], int]] = [
        (lambda: page.fill("#pgw-search", "reporting_3"), len(searched)),
        (lambda: page.uncheck("#pgw-severity input[data-name=critical]"), len(not_critical)),
        (lambda: page.click("#pgw-reset"), 50_000),
    ]
    for action, expected in steps:
        action()
        page.wait_for_function(
            f"document.querySelector('#pgw-count').dataset.matching === '{expected}'"
        )
    # How fast filters apply is a benchmark figure (python -m benchmarks), not a test.

    page.click("#pgw-next")
    assert "Showing 101\N{EN DASH}200" in page.inner_text("#pgw-count")
    page.screenshot(path=str(artifacts / "report-50000.png"))
    assert page.errors == []


def count_says(page: Any, text: str) -> None:
    """Wait until the findings count reads ``text`` (a function: the CSP forbids eval)."""
    page.wait_for_function(
        "text => document.querySelector('#pgw-count').textContent.includes(text)", arg=text
    )


@pytest.mark.parametrize("csp", ["enforced", "bypassed"])
def test_packed_findings_are_unpacked_and_drawn_as_inert_text(
    browser: Any, csp: str, tmp_path: Path
) -> None:
    page = next(new_page(browser, bypass_csp=csp == "bypassed"))
    hostile = hostile_large_results(2 * PLAIN_FINDINGS)
    open_report(page, hostile, tmp_path, "packed-hostile.html")
    # The last 500 findings: each packed, unpacked for this page.
    page.select_option("#pgw-size", "500")
    for shown in ("501", "1,001", "1,501"):
        page.click("#pgw-next")
        count_says(page, f"Showing {shown}\N{EN DASH}")
    rows = page.locator("#pgw-list details")
    assert rows.count() == 500
    hostile_rows = page.locator("#pgw-list details", has_text="window.__pwned").all()
    assert hostile_rows
    for details in hostile_rows[:12]:
        details.locator("summary").click()
    page.locator("#pgw-list .body").nth(min(len(hostile_rows), 12) - 1).wait_for()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert page.evaluate("document.scripts.length") == 2
    text = shown_text(page, "#pgw-list")
    assert HOSTILE["secai-radar"] in text and HOSTILE["ctxEco"] in text
    assert reveal_invisible(HOSTILE["temporal_app"]) in text
    assert "\u27e8U+202E\u27e9" in text and "\u202e" not in text
    assert page.errors == []
    page.context.close()


def test_the_search_reads_packed_findings_as_they_were_written(page: Any, tmp_path: Path) -> None:
    hostile = hostile_large_results(3 * PLAIN_FINDINGS)
    total = len(hostile.findings)
    open_report(page, hostile, tmp_path, "packed-search.html")
    # Terms as written in a name: a quote, non-ASCII, an invisible character, a control
    # character, markup; in any case. The data holds them JSON-escaped.
    for term, app in (
        ('\u00dc\u65e5\u672c\u202eTXT"', HOSTILE["zep_app"]),
        ("temporal\x07app</script>", HOSTILE["temporal_app"]),
    ):
        expected = sum(1 for f in hostile.findings if f.app == app)
        assert 0 < expected < total
        assert {f.app for f in hostile.findings[PLAIN_FINDINGS:]} >= {app}  # packed, too
        page.fill("#pgw-search", term)
        page.wait_for_function(
            f"document.querySelector('#pgw-count').dataset.matching === '{expected}'"
        )
        page.fill("#pgw-search", "")
        page.wait_for_function(
            f"document.querySelector('#pgw-count').dataset.matching === '{total}'"
        )
    assert page.errors == []


def test_without_a_native_base64_decoder_the_packed_findings_still_unpack(
    page: Any, tmp_path: Path
) -> None:
    page.add_init_script("delete Uint8Array.fromBase64")
    many = large_results(2 * PLAIN_FINDINGS)
    open_report(page, many, tmp_path, "packed-atob.html")
    page.wait_for_selector("body[data-indexed]", state="attached")
    last = many.findings[-1]
    page.fill("#pgw-search", last.fingerprint)
    page.wait_for_function("document.querySelector('#pgw-count').dataset.matching === '1'")
    assert last.resource in shown_text(page, "#pgw-list")
    assert page.errors == []


def test_a_browser_that_cannot_unpack_still_shows_the_plain_findings(
    page: Any, tmp_path: Path
) -> None:
    page.add_init_script("delete window.DecompressionStream")
    open_report(page, large_results(2 * PLAIN_FINDINGS), tmp_path, "no-unpacking.html")
    assert matching(page) == 2 * PLAIN_FINDINGS
    assert page.locator("#pgw-list details").count() == 100
    page.wait_for_selector("#pgw-failed")
    assert "could not unpack the findings after the first 1,000" in shown_text(page, "#pgw-failed")


def test_a_large_access_matrix_is_drawn_a_page_of_databases_at_a_time(
    page: Any, tmp_path: Path, artifacts: Path
) -> None:
    results = wide_matrix_results()
    matrix = server_access_matrix(results.servers[-1])
    open_report(page, results, tmp_path, "wide.html")
    assert page.locator("table.matrix").count() == 3  # two static, one drawn
    page.wait_for_selector(".explorer:not([hidden])")
    explorer_shows(page, len(matrix.exposed))
    columns, rows = drawn_grid(page, matrix)
    assert [matrix.databases[c][0] for c in columns] == list(matrix.exposed)
    # PUBLIC, then whoever has access of its own to a database shown.
    assert rows[0] == 0
    assert set(rows) == {0} | {row for row, column in matrix.cells if column in columns}
    page.screenshot(path=str(artifacts / "report-wide-matrix.png"), full_page=True)

    # What one app can reach: through PUBLIC, too.
    page.fill(".explorer [data-role=reacher]", "app-01")
    reached = [
        column
        for column, (name, _owner) in enumerate(matrix.databases)
        if name in matrix.exposed
        and matrix.cell(matrix.principals.index("app-01"), column).kind != "none"
    ]
    assert 0 < len(reached) < len(matrix.exposed)  # so clearing the name shows a change
    explorer_shows(page, len(reached))
    columns, rows = drawn_grid(page, matrix)
    assert columns == reached and rows == [0, matrix.principals.index("app-01")]

    # Every database, a page at a time; and one app's databases by name.
    page.fill(".explorer [data-role=reacher]", "")
    # Typing applies after a debounce: wait for it, or it lands after the click below
    # and takes the explorer back to the first page.
    explorer_shows(page, len(matrix.exposed))
    page.uncheck(".explorer [data-role=exposed]")
    explorer_shows(page, len(matrix.databases))
    page.click(".explorer [data-role=next]")
    assert "Databases 26\N{EN DASH}50 of 120" in page.inner_text(".explorer [data-role=count]")
    assert drawn_grid(page, matrix)[0] == list(range(25, 50))
    page.fill(".explorer [data-role=database]", "APP-05")
    explorer_shows(page, 2)
    columns, rows = drawn_grid(page, matrix)
    assert [matrix.principals[row] for row in rows] == ["PUBLIC", "app-05", "role/stray"]
    assert page.errors == []


@pytest.mark.parametrize("csp", ["enforced", "bypassed"])
def test_hostile_names_in_a_drawn_matrix_are_inert_text(
    browser: Any, csp: str, tmp_path: Path
) -> None:
    page = next(new_page(browser, bypass_csp=csp == "bypassed"))
    open_report(page, wide_matrix_results(hostile=True), tmp_path, "wide-hostile.html")
    page.wait_for_selector(".explorer:not([hidden])")
    grid = shown_text(page, ".explorer [data-role=grid]")
    assert HOSTILE["secai-radar"] in grid and HOSTILE["ctxEco"] in grid
    page.click("details.exposures summary")
    assert HOSTILE["ctxEco"] in page.inner_text("table.exposures")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert page.evaluate("document.scripts.length") == 2
    assert page.errors == []
    page.context.close()


def test_a_drawn_matrix_lists_at_most_two_hundred_apps(page: Any, tmp_path: Path) -> None:
    open_report(page, wide_matrix_results(apps=250), tmp_path, "wider.html")
    page.wait_for_selector(".explorer:not([hidden])")
    # Every app reaches the databases PUBLIC may connect to.
    page.fill(".explorer [data-role=reacher]", "app-")
    page.wait_for_function(
        "document.querySelector('.explorer [data-role=count]').dataset.rows === '201'"
    )
    assert "; 50 more rows not shown" in page.inner_text(".explorer [data-role=count]")
    assert page.locator(".explorer tbody tr").count() == 201  # PUBLIC and 200 apps
    assert page.errors == []


def test_compliance_view_picks_a_framework_and_drills_down(
    page: Any, results: Results, tmp_path: Path, artifacts: Path
) -> None:
    passed = with_pass_records(results)
    open_report(page, passed, tmp_path, "compliance.html")
    # One framework at a time, chosen in the picker (all of them without scripts).
    assert page.is_visible("#pgw-framework-picker")
    shown = page.locator("#compliance .framework:not([hidden])")
    assert shown.count() == 1 and shown.get_attribute("data-framework") == "cis-azure-3.0.0"
    page.select_option("#pgw-framework", "nist-800-53-r5")
    assert shown.count() == 1 and shown.get_attribute("data-framework") == "nist-800-53-r5"
    statuses = dict(
        zip(
            shown.locator("tr.control").evaluate_all("rows => rows.map(r => r.dataset.control)"),
            shown.locator("tr.control").evaluate_all("rows => rows.map(r => r.dataset.status)"),
            strict=True,
        )
    )
    assert statuses["AC-3"] == "fail" and statuses["IA-5"] == "manual"
    # Drill down: the findings behind AC-3, most severe first, then its pass records.
    row = shown.locator('tr[data-control="AC-3"]')
    drill = row.locator("details.drill")
    assert drill.locator("summary").inner_text() == "6 findings and 2 pass records"
    drill.locator("summary").click()
    items = drill.locator("li").all_inner_texts()
    assert [item.split()[0].lower() for item in items] == ["fail"] * 5 + ["waived"] + ["pass"] * 2
    assert "database/billing" in items[-2] + items[-1]
    assert "billing_owner=CTc/billing_owner" in drill.inner_text()  # the evidence, shown
    page.screenshot(path=str(artifacts / "report-compliance.png"), full_page=True)
    # The findings list shows pass records only when asked for.
    assert matching(page) == len(results.findings)
    page.check("#pgw-status input[data-name=pass]")
    page.wait_for_function(
        f"document.querySelector('#pgw-count').dataset.matching === '{len(passed.findings)}'"
    )
    page.click("#pgw-reset")
    page.wait_for_function(
        f"document.querySelector('#pgw-count').dataset.matching === '{len(results.findings)}'"
    )
    assert not page.is_checked("#pgw-status input[data-name=pass]")
    assert page.errors == []


def test_the_compliance_view_is_static_html_without_scripts(
    browser: Any, results: Results, tmp_path: Path
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    path = tmp_path / "noscript.html"
    path.write_bytes(render_html(results))
    page.goto(path.as_uri())
    # Every framework is listed, one after another, and the picker stays hidden.
    assert page.locator("#compliance .framework").count() == len(results.compliance or ())
    assert not page.is_visible("#pgw-framework-picker")
    assert page.is_visible('#compliance .framework[data-framework="nist-800-53-r5"]')
    context.close()
