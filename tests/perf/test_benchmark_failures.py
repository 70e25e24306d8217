"""What ``python -m benchmarks`` does when a step fails: a scan that fails meets no
target (the run exits non-zero), a step it cannot take is one line and exit 2, and
nothing an earlier run left in the same ``--out`` is measured as this run's. The other
benchmark commands (``benchmarks.wide``, ``.chain``, ``.fleet``, ``.floor``) refuse a
bad value in one line too, and the floor never says its DSN's password.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.chain import main as chain_main
from benchmarks.fleet import main as fleet_main
from benchmarks.floor import main as floor_main
from benchmarks.measure import RESULTS_FILE, Floor, ProcessRun, Scan, measure_scan
from benchmarks.run import FULL_SIZE, RunReport, ShapeRun
from benchmarks.tables import verdicts
from benchmarks.wide import main as wide_main
from pgwarden.cli.localpg import PG_BIN_VARIABLE


def _failed_run(exit_code: int) -> RunReport:
    run = ProcessRun(["pgwarden"], 0.4, 0.3, 40.0, exit_code, False, "", "error: bad config")
    floor = Floor(wall=5.0, loop=4.8, cpu=1.0, connections=2_001)
    shape = ShapeRun("apps", "", "trust", FULL_SIZE, 1.0, floor, Scan(run, {}), [])
    return RunReport(machine={"size": FULL_SIZE.label}, runs=[shape])


@pytest.mark.parametrize("exit_code", [2, -9])
def test_a_failed_scan_misses_its_target(exit_code: int) -> None:
    judged = {v.target: v for v in verdicts(_failed_run(exit_code))}
    against_floor = judged["apps · trust: scan ≤ 1.5x the floor"]
    assert against_floor.met is False
    assert against_floor.measured == f"scan failed (exit {exit_code})"


def test_a_scan_that_fails_is_not_measured_by_what_an_earlier_one_left(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "scan-0"
    workdir.mkdir()
    (workdir / RESULTS_FILE).write_text('{"findings": []}', encoding="utf-8")
    (workdir / "probe.json").write_text('{"seconds": {"evaluate": 0.1}}', encoding="utf-8")
    # pgwarden refuses a config that is not there: exit 2, before any connection.
    scan = measure_scan(tmp_path / "missing.toml", dict(os.environ), 4, workdir, 60, lambda: None)
    assert scan.run.exit_code == 2
    assert not scan.complete
    assert scan.json_bytes is None
    # The probe's figures are this scan's: it never evaluated.
    assert scan.stats["exit_code"] == 2
    assert "evaluate" not in scan.seconds


def test_no_server_to_build_on_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv(PG_BIN_VARIABLE, str(empty))
    argv = ["--quick", "--shape", "apps", "--auth", "trust", "--no-browser"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert said[-1].startswith("python -m benchmarks: error: $PGWARDEN_PG_BIN")
    assert "Traceback" not in "\n".join(said)


def test_an_out_folder_that_cannot_be_made_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("", encoding="utf-8")
    with pytest.raises(SystemExit) as ended:
        main(["--reports-only", "--out", str(a_file / "out")])
    assert ended.value.code == 2
    assert f"--out {a_file / 'out'}:" in capsys.readouterr().err


def test_a_wide_database_that_fails_is_a_missed_target_not_a_lost_run() -> None:
    report = _failed_run(2)
    report.wide_error = "the scan did not finish (exit 2): error: bad config"
    judged = {v.target: v for v in verdicts(report)}
    assert judged["wide database: the scan finishes"].met is False
    assert "exit 2" in judged["wide database: the scan finishes"].measured


@pytest.mark.parametrize(
    ("command", "argv", "said"),
    [
        (wide_main, ["--tables", "0"], "--tables: 0 is outside 1 to 1,000,000"),
        (wide_main, ["--scan-timeout", "-5"], "--scan-timeout: -5 is outside 1 to 3,600"),
        (chain_main, ["--apps", "1"], "--apps: 1 is outside 2 to 10,000"),
        (fleet_main, ["--servers", "0"], "--servers: 0 is outside 1 to 4,096"),
        (fleet_main, ["--listed", "10", "--servers", "20"], "--listed 10 is fewer than"),
        (fleet_main, ["--servers", "300"], "--servers 300 need at least 5 --clusters"),
        (floor_main, ["--dsn-env", "PGW_TEST_UNSET"], "$PGW_TEST_UNSET is not set"),
        (floor_main, ["--dsn-env", "PGW_TEST_DSN", "--jobs", "0"], "0 is outside 1 to 64"),
    ],
)
def test_the_other_benchmark_commands_refuse_a_bad_value_in_one_line(
    command: Callable[[list[str]], int],
    argv: list[str],
    said: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGW_TEST_UNSET", raising=False)
    monkeypatch.setenv("PGW_TEST_DSN", "host=127.0.0.1 dbname=postgres")
    with pytest.raises(SystemExit) as ended:
        command(argv)
    assert ended.value.code == 2
    assert said in capsys.readouterr().err.splitlines()[-1]


def test_the_floor_says_a_bad_dsn_in_one_line_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PGW_TEST_DSN", "password=hunter2 not a dsn")
    with pytest.raises(SystemExit) as ended:
        floor_main(["--dsn-env", "PGW_TEST_DSN"])
    assert ended.value.code == 2
    said = capsys.readouterr().err
    assert "is not a PostgreSQL connection string" in said and "hunter2" not in said
    # Nothing listens on port 1: refused, said in one line, the password kept out.
    monkeypatch.setenv("PGW_TEST_DSN", "host=127.0.0.1 port=1 password=hunter2 connect_timeout=5")
    assert floor_main(["--dsn-env", "PGW_TEST_DSN"]) == 2
    said = capsys.readouterr().err.strip()
    assert said.startswith("python -m benchmarks.floor: error: OperationalError: ")
    assert "\n" not in said and "hunter2" not in said
