"""``python -m benchmarks`` says how much disk a run's servers take before it builds
them, and refuses a run that would not fit: the estimate is checked against what a
server of the benchmark's own plan takes on each PostgreSQL version."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from benchmarks.__main__ import main
from benchmarks.run import WAL_MB, disk_needed_mb
from benchmarks.scenario import Plan, SyntheticServer
from pgwarden.cli.localpg import LocalServer
from tests.pgserver import reset_server

SIZES = "SELECT sum(pg_database_size(oid))::float8 FROM pg_database"


@pytest.mark.versioned
def test_a_server_of_the_plan_takes_no_more_than_its_estimate(pg_server: LocalServer) -> None:
    reset_server(pg_server)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        before = conn.execute(SIZES).fetchone()
        SyntheticServer(pg_server, Plan(seed=3, apps=4, tables=25)).grow(12, 60)
        after = conn.execute(SIZES).fetchone()
    reset_server(pg_server)
    assert before is not None and after is not None
    grown_mb = (after[0] - before[0]) / 1e6
    estimate = disk_needed_mb(12 + 1, 25) - WAL_MB  # and the template they copy
    # Near it, not far below: an estimate of twice the need would refuse runs that fit.
    assert 0.7 * estimate <= grown_mb <= estimate


class _Usage(NamedTuple):
    total: int
    used: int
    free: int


def test_a_run_that_would_not_fit_is_refused_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # This disk, as if nearly full: 0.5 GB free of 100.
    monkeypatch.setattr(shutil, "disk_usage", lambda _where: _Usage(10**11, 10**11, 5 * 10**8))
    argv = ["--quick", "--shape", "apps", "--auth", "trust", "--no-browser"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert said == [
        "python -m benchmarks: error: the largest server this run builds takes about "
        f"{disk_needed_mb(50 + 1, 25) / 1000:.1f} GB, and {tempfile.gettempdir()} (where the "
        "throwaway servers live) has 0.5 GB free: free some space, or set TMPDIR to a "
        "directory on a larger disk"
    ]
