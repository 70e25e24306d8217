"""The rule pages in docs/rules are current, complete, and what report links point at."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pgwarden.cli.rule_docs import INDEX, markdown_text, rule_docs, stale_pages
from pgwarden.engine import evaluate
from pgwarden.model.config import Config
from pgwarden.model.snapshot import Snapshot
from pgwarden.reports.html import render_html
from pgwarden.reports.sarif import render_sarif
from pgwarden.rules.registry import BUILT_IN, load_rules

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "rules"
EXAMPLE = ROOT / "tests" / "rules" / "fixtures" / "every_rule.json"
LINK = re.compile(r"https?://[^\s\"'<>\\]+")
SARIF_SCHEMA_KEY = "$schema"


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return rule_docs(EXAMPLE)


def test_the_pages_in_the_repository_are_current(pages: dict[str, str]) -> None:
    stale = stale_pages(pages, DOCS)
    assert stale == [], f"out of date: {stale}; run: python -m pgwarden.cli.rule_docs"


def test_every_built_in_rule_has_a_page_with_its_text_and_an_example(
    pages: dict[str, str],
) -> None:
    built_in = [e.rule for e in load_rules() if e.source == BUILT_IN]
    assert set(pages) == {f"{rule.id}.md" for rule in built_in} | {INDEX}
    shown = set(json.loads(EXAMPLE.read_text(encoding="utf-8"))["rules"])
    for rule in built_in:
        page = pages[f"{rule.id}.md"]
        doc = rule.doc()
        assert page.count(f"# {rule.id}: ") == 1
        assert f"| Severity | {rule.severity} " in page
        assert markdown_text(doc.fix) in page and markdown_text(doc.rationale) in page
        for mapping in rule.frameworks:
            assert f"- {markdown_text(mapping)}" in page
        if rule.id in shown:  # rules newer than the example server say they have none yet
            assert "the rule reports:\n\n> " in page, rule.id
        assert f"[{rule.id}]({rule.id}.md)" in pages[INDEX]


def test_markdown_text_shows_docstring_prose_as_written() -> None:
    text = "REVOKE ON <TABLES|...> FROM <grantee>; ``pg_default_acl`` and pgAdmin* _x_ a_b"
    assert markdown_text(text) == (
        r"REVOKE ON \<TABLES\|...\> FROM \<grantee\>; ``pg_default_acl`` and pgAdmin\* \_x\_ a_b"
    )


def _scan(rule_docs_url: str | None) -> tuple[str, dict[str, object]]:
    case = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    config = Config.model_validate({**case["config"], "report": {"rule_docs_url": rule_docs_url}})
    results = evaluate(Snapshot.model_validate(case["snapshot"]), config, load_rules())
    html = render_html(results).decode("utf-8")
    sarif: dict[str, object] = json.loads(render_sarif(results))
    return html, sarif


def _links(html: str, sarif: dict[str, object]) -> set[str]:
    without_schema = {k: v for k, v in sarif.items() if k != SARIF_SCHEMA_KEY}
    return set(LINK.findall(html)) | set(LINK.findall(json.dumps(without_schema)))


def test_report_links_resolve_to_pages_in_the_repository() -> None:
    base = "https://git.example.com/acme/pgwarden/blob/v0.1.0/docs/rules/"
    html, sarif = _scan(base + "{rule_id}.md")
    links = _links(html, sarif)
    assert len(links) == len(list(DOCS.glob("PGW-*.md")))  # one per rule, no other
    for link in links:
        assert link.startswith(base), link
        assert (DOCS / link.removeprefix(base)).is_file(), link


def test_without_a_docs_url_reports_carry_no_link() -> None:
    html, sarif = _scan(None)
    assert _links(html, sarif) == set()
    runs = sarif["runs"]
    assert isinstance(runs, list)
    for rule in runs[0]["tool"]["driver"]["rules"]:
        assert "helpUri" not in rule and rule["help"]["text"]
