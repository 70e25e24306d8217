"""Where evaluation goes: the probe's stopwatch on each rule's check.

``python -m benchmarks.probe`` runs the real ``pgwarden scan`` and times each selected
rule's check; the benchmark prints the rules' share of evaluation, the rest (turning
verdicts into findings, the server's summary, compliance) and the slowest rules. On a
real server: every rule whose check ran is timed, none that did not, and the
stopwatches change nothing the scan finds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from benchmarks.measure import RESULTS_FILE, Floor, ProcessRun, Scan, measure_scan
from benchmarks.run import FULL_SIZE, RunReport, ShapeRun
from benchmarks.scenario import DSN_VARIABLE
from benchmarks.tables import evaluation_table
from pgwarden.cli.localpg import LocalServer
from tests.perf.synthetic import SMALL, grown, scanned
from tests.pgserver import reset_server


@pytest.fixture(scope="module")
def probed(
    pg_server: LocalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Scan, dict[str, Any], dict[str, Any]]]:
    """One scan under the probe and one without it, of the same server: the probe's
    figures, its results and the plain scan's results."""
    out = tmp_path_factory.mktemp("probed")
    config, dsn = grown(pg_server, SMALL, out)
    env = {**os.environ, DSN_VARIABLE: dsn}
    scan = measure_scan(config, env, 2, out / "scan", 120, lambda: None)
    assert scan.complete, scan.run.stderr
    probed_results = json.loads((out / "scan" / RESULTS_FILE).read_text(encoding="utf-8"))
    plain = scanned(config, dsn, out / "plain.json")
    yield scan, probed_results, plain
    reset_server(pg_server)


def test_every_rule_whose_check_ran_is_timed_and_no_other(
    probed: tuple[Scan, dict[str, Any], dict[str, Any]],
) -> None:
    scan, results, _plain = probed
    outcomes = {c["rule_id"]: c["outcome"] for c in results["coverage"]}
    timed = scan.rule_seconds
    # Rules that passed or failed ran their check; a skipped rule (no Azure here) did not.
    ran = {rule for rule, outcome in outcomes.items() if outcome in ("passed", "failed")}
    assert {"PGW-ISO-002", "PGW-ISO-004", "PGW-ROLE-004"} <= ran
    assert ran <= set(timed)
    assert not {rule for rule, outcome in outcomes.items() if outcome == "skipped"} & set(timed)
    assert all(seconds >= 0 for seconds in timed.values())
    # The checks are part of evaluation, and not all of it.
    assert scan.evaluation is not None
    assert 0 < sum(timed.values()) < scan.evaluation


def test_the_stopwatches_change_nothing_the_scan_finds(
    probed: tuple[Scan, dict[str, Any], dict[str, Any]],
) -> None:
    _scan, probed_results, plain = probed
    assert probed_results["findings"] == plain["findings"]
    assert probed_results["coverage"] == plain["coverage"]
    assert probed_results["summary"] == plain["summary"]


def _run(stats: dict[str, Any]) -> ShapeRun:
    scan = ProcessRun(["pgwarden"], 4.0, 2.0, 90.0, 1, False, "", "")
    floor = Floor(wall=2.0, loop=1.9, cpu=1.0, connections=1_001)
    return ShapeRun("unmapped logins", "", "trust", FULL_SIZE, 1.0, floor, Scan(scan, stats), [])


def _row(run: ShapeRun) -> list[str]:
    """The table's one row, cell by cell, as the benchmark prints it."""
    console = Console(width=200, record=True)
    console.print(evaluation_table(RunReport(machine={"size": FULL_SIZE.label}, runs=[run])))
    (line,) = [line for line in console.export_text().splitlines() if "unmapped logins" in line]
    return [cell.strip() for cell in line.strip().strip("│┃|").split("│")]


def test_the_table_gives_the_rules_the_rest_and_the_slowest_first() -> None:
    stats = {
        "seconds": {"evaluate": 1.2},
        "rule_seconds": {"PGW-ROLE-004": 0.12, "PGW-ISO-004": 0.27, "PGW-ISO-002": 0.23},
    }
    stats["rule_seconds"] |= {"PGW-ISO-006": 0.2, "PGW-ADM-001": 0.0}
    label, evaluate, checks, rest, slowest = _row(_run(stats))
    assert (label, evaluate, checks, rest) == ("unmapped logins · trust", "1.20", "0.82", "0.38")
    assert slowest == "PGW-ISO-004 0.27, PGW-ISO-002 0.23, PGW-ISO-006 0.20"


def test_a_run_without_the_rules_times_shows_none() -> None:
    # A benchmark.json from before the probe timed the rules, or a scan that failed.
    _label, evaluate, checks, rest, slowest = _row(_run({"seconds": {"evaluate": 1.0}}))
    assert (evaluate, checks, rest, slowest) == ("1.00", "—", "—", "—")
