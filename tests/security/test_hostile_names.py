"""Hostile names through a real scan: collected exactly, inert in every output.

Database, role, schema, table and application names with quotes, backslashes,
spaces, unicode, a line break, ``<script>`` and SQL-looking text are created on a real
server, scanned through the CLI into every format, and then: the JSON names them
exactly, SARIF validates against the OASIS schema, JUnit parses, Markdown escapes them,
and the HTML report, opened in Chromium, shows them as text and runs none of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from junitparser import JUnitXml
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from pgwarden.reports.registry import RENDERERS
from tests.cli import run_pgwarden
from tests.reports.test_html_browser import new_page
from tests.reports.test_sarif import assert_valid_sarif
from tests.rules.scenario import ADMIN
from tests.rules.test_remediation import DB_A, EXPECTED, ROLE_B, TABLE, _build

pytestmark = pytest.mark.versioned

STRAY = '<img src=x onerror="window.__pwned=1">\\role'
# PostgreSQL keeps application_name printable ASCII (it turns anything else into "?").
APP_NAME = "<script>window.__pwned=1</script> \\ \"q\" 'q' --"


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    scenario = _build(pg_server)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(STRAY)))
    work = tmp_path_factory.mktemp("hostile")
    (work / "pgwarden.toml").write_text(scenario.config_text)
    outputs = [arg for name in RENDERERS for arg in (f"--{name}", f"out.{name}")]
    with psycopg.connect(scenario.dsn(ADMIN, DB_A), application_name=APP_NAME):
        run = run_pgwarden("scan", "-q", *outputs, cwd=work)
    assert run.returncode == 1, run.stderr
    yield work


def test_json_names_them_exactly(scanned: Path) -> None:
    results = json.loads((scanned / "out.json").read_text())
    found = {(f["rule_id"], f["resource"], f.get("principal")) for f in results["findings"]}
    assert found >= EXPECTED
    assert ("PGW-ROLE-004", f"role/{STRAY}", f"role/{STRAY}") in found
    (admin,) = [f for f in results["findings"] if f["rule_id"] == "PGW-ADM-001"]
    assert admin["evidence"]["application_name"] == APP_NAME
    assert admin["evidence"]["database"] == DB_A


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_sarif_junit_and_markdown_stay_valid(scanned: Path) -> None:
    sarif = json.loads((scanned / "out.sarif").read_text())
    assert_valid_sarif(sarif)
    strings = " ".join(_strings(sarif))
    assert TABLE in strings and ROLE_B in strings
    suites = JUnitXml.fromfile(str(scanned / "out.junit"))
    cases = [case.name for suite in suites for case in suite]
    assert any(STRAY in name for name in cases)
    markdown = (scanned / "out.markdown").read_text()
    # Fenced code blocks show their text verbatim; everywhere else names are escaped.
    prose = "".join(markdown.split("```")[0::2])
    assert "<script>" not in prose and "<img" not in prose
    assert "<script>" in markdown  # the remediation shows the name as it is


def test_html_shows_them_as_inert_text(browser: Any, scanned: Path, artifacts: Path) -> None:
    for page in new_page(browser, bypass_csp=True):
        page.goto((scanned / "out.html").as_uri())
        page.wait_for_selector("#pgw-count[data-matching]")
        page.fill("#pgw-search", "ADM-001")
        page.click("#pgw-list details.finding summary")
        text = page.inner_text("body")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("#pgw-list script, #pgw-list img").count() == 0
        assert "<script>window.__pwned=1</script>" in text
        page.fill("#pgw-search", "ROLE-004")
        page.wait_for_function(
            "!document.querySelector('#pgw-list').innerText.includes('PGW-ADM-001')"
        )
        assert STRAY.split("\\")[0] in page.inner_text("#pgw-list")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        page.screenshot(path=str(artifacts / "report-hostile-scan.png"), full_page=True)
        assert page.errors == []
