"""The HTML report as a file: self-contained, deterministic, data escaped."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable

from pgwarden.reports.html import access_matrix, render_html
from pgwarden.scanner.results import Results
from tests.reports.conftest import HOSTILE


def embedded_data(html: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="pgw-data">(.*?)</script>', html, re.S)
    assert match is not None
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_html_golden(results: Results, golden: Callable[[str, str], None]) -> None:
    golden("report.html", render_html(results))


def test_self_contained(results: Results) -> None:
    html = render_html(results)
    assert "<link" not in html
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", html)
    assert "@import" not in html
    assert "url(" not in html
    # Links to rule documentation are fine; nothing is fetched.
    assert "default-src 'none'" in html


def test_only_the_report_script_may_run(results: Results) -> None:
    html = render_html(results)
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html


def test_header_names_scan_config_and_completeness(results: Results) -> None:
    html = render_html(results)
    assert "2027-01-15 09:00:00 UTC" in html
    assert "pgwarden 0.1.0" in html
    assert results.scan.config_sha256 is not None
    assert results.scan.config_sha256 in html
    assert "audit/pgwarden.toml" in html
    assert "Scan incomplete" in html


def test_findings_are_embedded_grouped_by_family(results: Results) -> None:
    data = embedded_data(render_html(results))
    findings = data["findings"]
    assert isinstance(findings, list) and len(findings) == len(results.findings)
    rules = data["rules"]
    assert isinstance(rules, list)
    families = [rules[row[0]]["family"] for row in findings]
    # Each family's findings are together.
    seen: list[int] = []
    for family in families:
        if not seen or seen[-1] != family:
            assert family not in seen
            seen.append(family)


def test_access_matrix_shows_how_each_app_reaches_each_database(results: Results) -> None:
    matrix = access_matrix(results.servers[0])
    assert [db for db, _owner in matrix.databases] == [
        "ctxEco",
        "zep",
        "temporal",
        "temporal_visibility",
        "secairadar",
    ]
    rows = {principal: [c.label for c in cells] for principal, cells in matrix.rows}
    assert list(rows) == ["PUBLIC", "ctxeco", "zep", "temporal", "secai-radar"]
    assert rows["PUBLIC"] == ["—", "CONNECT", "CONNECT", "CONNECT", "—"]
    assert rows["zep"] == ["via grant", "own", "via PUBLIC", "via PUBLIC", "—"]
    assert rows["temporal"] == ["via membership", "via PUBLIC", "own", "own", "via membership"]
    violations = {
        (principal, db)
        for principal, cells in matrix.rows
        for (db, _owner), cell in zip(matrix.databases, cells, strict=True)
        if cell.violation
    }
    assert ("zep", "ctxEco") in violations and ("ctxeco", "ctxEco") not in violations
    assert matrix.exposed == ("ctxEco", "zep", "temporal", "temporal_visibility", "secairadar")


def test_hostile_names_never_appear_as_markup(hostile_results: Results) -> None:
    html = render_html(hostile_results)
    for name in HOSTILE.values():
        assert name not in html
    assert "<img" not in html
    assert "window.__pwned" in html  # present, but only as escaped text
    assert html.count("</script>") == 2  # the data block and the report script
    data = embedded_data(html)
    assert HOSTILE["secai-radar"] in json.dumps(data, ensure_ascii=False)


def test_no_findings_still_renders(results: Results) -> None:
    empty = results.model_copy(update={"findings": (), "servers": (), "coverage": ()})
    html = render_html(empty)
    assert embedded_data(html)["findings"] == []


def test_run_context_history_baseline_and_waivers(results: Results) -> None:
    html = render_html(results)
    visible = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert "<strong>5 new</strong>, <strong>1 resolved</strong>" in visible
    assert "5 unchanged, 1 no longer found" in visible
    assert "<strong>1 expired</strong>, 1 stale" in visible
    assert "audit/waivers.toml:9" in visible  # where the expired waiver is written
    # Each finding's first sighting and age, from the history, for its details.
    data = embedded_data(html)
    columns = data["columns"]
    assert isinstance(columns, list) and isinstance(data["findings"], list)
    rows = [dict(zip(columns, row, strict=True)) for row in data["findings"]]
    ages = {(row["resource"], row["first_seen"], row["age"]) for row in rows if row["age"]}
    assert ("role/zep_app", "2026-11-03 09:00:00 UTC", "73 days") in ages
    assert ("session/4488", "2027-01-15 09:00:00 UTC", "0 days") in ages
