"""Outputs that cannot all be written are refused before anything is read or scanned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgwarden.cli.main import cli
from tests.reports.conftest import FIXTURE

# A server nothing listens on: were the outputs checked after connecting, the error
# would be about the connection, not the outputs.
NOWHERE = "postgresql://auditor@127.0.0.1:1/postgres?connect_timeout=2"


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        (["--json", "-", "--sarif", "-"], "--json and --sarif both write to stdout ('-')"),
        (["--json", "r.json", "--html", "./r.json"], "--json and --html both write ./r.json"),
        (["--json", "r.json", "--evidence-bundle", "r.json"], "--json and --evidence-bundle"),
        (["--csv", "missing/r.csv"], "cannot write missing/r.csv: there is no folder missing"),
        (["--junit", "."], "cannot write .: it is a directory"),
    ],
)
def test_scan_refuses_outputs_it_could_not_all_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: list[str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["scan", "--dsn", NOWHERE, *outputs])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"pgwarden: error: {expected}")
    assert "connect" not in line  # refused before any server was touched
    assert not (tmp_path / "r.json").exists()


def test_many_outputs_may_go_to_one_device(tmp_path: Path) -> None:
    # /dev/null (a device, not a file) is written into, by any number of outputs.
    out = tmp_path / "r.sarif"
    result = CliRunner().invoke(
        cli,
        ["report", str(FIXTURE), "--json", os.devnull, "--html", os.devnull, "--sarif", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


def test_report_and_merge_refuse_a_clash_too(tmp_path: Path) -> None:
    runner = CliRunner()
    report = runner.invoke(cli, ["report", str(FIXTURE), "--json", "-", "--markdown", "-"])
    assert report.exit_code == 2
    assert "--json and --markdown both write to stdout" in report.output
    same = str(tmp_path / "m.json")
    merge = runner.invoke(cli, ["merge", str(FIXTURE), "-o", same, "--json", same])
    assert merge.exit_code == 2
    assert f"-o and --json both write {same}" in merge.output
