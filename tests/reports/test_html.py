"""The HTML report as a file: self-contained, deterministic, data escaped."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import re
from collections.abc import Callable
from typing import Any

from pgwarden.model.results import Finding, Results
from pgwarden.reports.access_matrix import server_access_matrix
from pgwarden.reports.html import _grouped_by_family, render_html
from pgwarden.reports.html_data import CHUNK_FINDINGS, PLAIN_FINDINGS
from pgwarden.reports.view import is_current, rules_by_id, severity_first
from tests.reports.conftest import (
    HOSTILE,
    WIDE_SERVER,
    hostile_large_results,
    large_results,
    wide_matrix_results,
)


def html_text(results: Results) -> str:
    return render_html(results).decode("utf-8")


def embedded_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="pgw-data">(.*?)</script>', html, re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def embedded_findings(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every finding in the data block, key and details by column name, packed ones
    unpacked as report.js does (base64, gzip, a JSON row per line)."""
    keys = data["keys"]
    width = len(data["key_columns"])
    rows = list(data["details"])
    packed = data["packed"]
    if packed is not None:
        for chunk in packed["chunks"]:
            lines = gzip.decompress(base64.b64decode(chunk)).decode("utf-8").split("\n")
            assert len(lines) <= packed["findings_per_chunk"]
            rows += [json.loads(line) for line in lines]
    assert len(keys) == width * len(rows)
    return [
        dict(zip(data["key_columns"], keys[i * width : (i + 1) * width], strict=True))
        | dict(zip(data["detail_columns"], row, strict=True))
        for i, row in enumerate(rows)
    ]


def test_html_golden(results: Results, golden: Callable[[str, str | bytes], None]) -> None:
    golden("report.html", html_text(results))


def test_self_contained(results: Results) -> None:
    html = html_text(results)
    assert "<link" not in html
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", html)
    assert "@import" not in html
    assert "url(" not in html
    # Links to rule documentation are fine; nothing is fetched.
    assert "default-src 'none'" in html


def test_only_the_report_script_may_run(results: Results) -> None:
    html = html_text(results)
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html


def test_header_names_scan_config_and_completeness(results: Results) -> None:
    html = html_text(results)
    assert "2027-01-15 09:00:00 UTC" in html
    assert "pgwarden 0.1.0" in html
    assert results.scan.config_sha256 is not None
    assert results.scan.config_sha256 in html
    assert "audit/pgwarden.toml" in html
    assert "Scan incomplete" in html


def test_findings_are_embedded_grouped_by_family(results: Results) -> None:
    data = embedded_data(html_text(results))
    findings = embedded_findings(data)
    assert len(findings) == len(results.findings)
    assert data["packed"] is None  # a small report is plain JSON
    rules = data["rules"]
    assert isinstance(rules, list)
    families = [rules[f["rule"]]["family"] for f in findings]
    # Each family's findings are together.
    seen: list[int] = []
    for family in families:
        if not seen or seen[-1] != family:
            assert family not in seen
            seen.append(family)


def test_a_large_report_packs_the_details_after_the_first_thousand_findings() -> None:
    many = large_results(PLAIN_FINDINGS + 2 * CHUNK_FINDINGS + 7)
    data = embedded_data(html_text(many))
    assert len(data["details"]) == PLAIN_FINDINGS
    assert len(data["packed"]["chunks"]) == 3  # two full chunks and seven findings
    assert data["packed"]["findings_per_chunk"] == CHUNK_FINDINGS
    # Unpacked, the same findings in the same order as a plain report would list them.
    findings = embedded_findings(data)
    listed = _grouped_by_family(many.findings, rules_by_id(many))
    assert [f["fingerprint"] for f in findings] == [f.fingerprint for f in listed]
    last, finding = findings[-1], listed[-1]
    assert data["rules"][last["rule"]]["id"] == finding.rule_id
    assert data["apps"][last["app"]] == finding.app
    assert data["severities"][last["severity"]] == finding.severity
    assert data["statuses"][last["status"]] == finding.status
    assert (last["message"], last["evidence"]) == (finding.message, finding.evidence)


def test_hostile_names_in_packed_findings_stay_data() -> None:
    hostile = hostile_large_results(PLAIN_FINDINGS + CHUNK_FINDINGS)
    html = html_text(hostile)
    for name in HOSTILE.values():
        assert name not in html
    assert "<img" not in html
    assert html.count("</script>") == 2
    data = embedded_data(html)
    packed = embedded_findings(data)[PLAIN_FINDINGS:]
    assert {data["apps"][f["app"]] for f in packed} >= set(HOSTILE.values())
    assert any(HOSTILE["temporal_app"] in f["message"] for f in packed)


def test_access_matrix_shows_how_each_app_reaches_each_database(results: Results) -> None:
    matrix = server_access_matrix(results.servers[0])
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
    html = html_text(hostile_results)
    for name in HOSTILE.values():
        assert name not in html
    assert "<img" not in html
    assert "window.__pwned" in html  # present, but only as escaped text
    assert html.count("</script>") == 2  # the data block and the report script
    data = embedded_data(html)
    assert HOSTILE["secai-radar"] in json.dumps(data, ensure_ascii=False)


def test_no_findings_still_renders(results: Results) -> None:
    empty = results.model_copy(update={"findings": (), "servers": (), "coverage": ()})
    html = html_text(empty)
    data = embedded_data(html)
    assert data["keys"] == [] and data["details"] == [] and data["packed"] is None


def test_run_context_history_baseline_and_waivers(results: Results) -> None:
    html = html_text(results)
    visible = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert "<strong>5 new</strong>, <strong>1 resolved</strong>" in visible
    assert "5 unchanged, 1 no longer found" in visible
    assert "<strong>1 expired</strong>, 1 stale" in visible
    assert "audit/waivers.toml:9" in visible  # where the expired waiver is written
    # Each finding's first sighting and age, from the history, for its details.
    rows = embedded_findings(embedded_data(html))
    ages = {(row["resource"], row["first_seen"], row["age"]) for row in rows if row["age"]}
    assert ("role/zep_app", "2026-11-03 09:00:00 UTC", "73 days") in ages
    assert ("session/4488", "2027-01-15 09:00:00 UTC", "0 days") in ages


def matrix_block(html: str, server: str) -> str:
    """The access matrix section of one server."""
    start = html.index(f'<div class="matrix-block">\n    <h3>{server}</h3>')
    ends = (html.find('<div class="matrix-block">', start + 1), html.index("</section>", start))
    return html[start : min(end for end in ends if end > 0)]


def test_a_small_access_matrix_is_a_static_table(results: Results) -> None:
    html = html_text(results)
    assert embedded_data(html)["matrices"] == []
    block = matrix_block(html, "ctxeco-db")
    assert block.count('<td class="cell ') == 5 * 5
    assert 'class="explorer"' not in block


def test_a_large_access_matrix_lists_its_exposed_databases_instead_of_every_cell() -> None:
    results = wide_matrix_results()
    server = results.servers[-1]
    html = html_text(results)
    block = matrix_block(html, WIDE_SERVER)
    assert '<td class="cell ' not in block  # no cell of the 62 by 120 grid is static
    assert "22 of 120 app databases can be reached by another app or by PUBLIC" in block
    assert '<div class="explorer" data-matrix="0" hidden>' in block
    # Every violating access cell is listed under its database, and nothing else.
    violations = {(cell.database, cell.principal) for cell in server.access if cell.violation}
    listed = {
        (exposure.database, principal)
        for exposure in server_access_matrix(server).exposures()
        for principal, cell in exposure.reached_by
        if cell.violation
    }
    assert listed == violations
    assert block.count("<li title=") == len(violations)
    assert (
        '<li title="role/stray → app-05_db0: through a direct CONNECT grant (violation)">'
        '<strong>role/stray</strong> <span class="cell grant bad">via grant</span></li>'
    ) in block
    assert (
        '<li title="PUBLIC → app-10_db0: through PUBLIC&#39;s CONNECT privilege (violation)">'
        '<strong>PUBLIC</strong> <span class="cell public bad">CONNECT</span></li>'
    ) in block


def test_a_large_access_matrix_travels_as_one_code_per_access_cell() -> None:
    results = wide_matrix_results()
    server = results.servers[-1]
    matrix = server_access_matrix(server)
    data = embedded_data(html_text(results))
    kinds = data["access_kinds"]
    assert isinstance(kinds, list) and [k[0] for k in kinds] == [
        "own",
        "public",
        "grant",
        "membership",
    ]
    (compact,) = data["matrices"]
    assert compact["server"] == WIDE_SERVER
    assert compact["principals"] == list(matrix.principals)
    exposed = set(matrix.exposed)
    assert compact["databases"] == [[db, app, db in exposed] for db, app in matrix.databases]
    codes = {}
    for row, flat in enumerate(compact["cells"]):
        for column, code in zip(flat[::2], flat[1::2], strict=True):
            codes[(row, column)] = (kinds[code // 2][0], code % 2 == 1)
    assert len(codes) == len(server.access)
    # Filled in as report.js does (PUBLIC's reach for rows without a cell of their
    # own), the codes give the whole grid.
    for row in range(len(matrix.principals)):
        for column in range(len(matrix.databases)):
            code = codes.get((row, column)) or (codes.get((0, column)) if row else None)
            cell = matrix.cell(row, column)
            assert (code or ("none", False)) == (cell.kind, cell.violation), (row, column)


def test_hostile_names_in_a_large_access_matrix_stay_data() -> None:
    html = html_text(wide_matrix_results(hostile=True))
    for name in (HOSTILE["secai-radar"], HOSTILE["ctxEco"]):
        assert name not in html
    assert "<img" not in html
    assert html.count("</script>") == 2
    (compact,) = embedded_data(html)["matrices"]
    assert HOSTILE["secai-radar"] in compact["principals"]
    assert [HOSTILE["ctxEco"], "app-00", True] in compact["databases"]


def test_grouping_by_family_is_a_stable_sort() -> None:
    many = large_results(400)
    # Some baseline entries the scan no longer finds: last in their family.
    findings = [
        f.model_copy(update={"baseline_state": "absent"}) if i % 9 == 0 else f
        for i, f in enumerate(many.findings)
    ]
    random.Random(5).shuffle(findings)
    rules = rules_by_id(many)
    catalogue: dict[str, int] = {}
    for index, rule in enumerate(rules.values()):
        catalogue.setdefault(rule.family, index)
    worst: dict[str, tuple[int, int]] = {}
    for f in findings:
        key = severity_first(f) if is_current(f) else (3, 0)
        family = rules[f.rule_id].family
        worst[family] = min(worst.get(family, key), key)

    def order(f: Finding) -> tuple[object, ...]:
        family = rules[f.rule_id].family
        return (worst[family], catalogue[family], not is_current(f), severity_first(f))

    assert _grouped_by_family(findings, rules) == sorted(findings, key=order)


def test_many_of_one_kind_is_told_once_in_the_summary(results: Results) -> None:
    page = render_html(large_results(2_000)).decode("utf-8")
    summary = page.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert '<div id="stories">' in summary
    table = summary.split('<div id="stories">', 1)[1]
    assert "database/db_000000" in table
    assert table.count("<tr>") == 1 + len({f.rule_id for f in large_results(2_000).findings})
    assert '<div id="stories">' not in render_html(results).decode("utf-8")
