"""``pgwarden compliance RESULTS.json [--framework ID]`` on a saved results document."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pgwarden.cli.main import cli
from tests.reports.conftest import FIXTURE


def test_every_framework_in_one_table() -> None:
    result = CliRunner().invoke(cli, ["compliance", str(FIXTURE)])
    assert result.exit_code == 0, result.output
    for framework in ("cis-azure-3.0.0", "cis-postgresql-17-1.0.0", "nist-800-53-r5"):
        assert framework in result.output
    assert "acme-dbsec-2" in result.output  # a plug-in's own framework


def test_one_framework_control_by_control() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["compliance", str(FIXTURE), "--framework", "NIST-800-53-R5"])
    assert result.exit_code == 0, result.output
    assert "AC-6(5)" in result.output and "Privileged Accounts" in result.output
    failing = runner.invoke(
        cli, ["compliance", str(FIXTURE), "--framework", "nist-800-53-r5", "--status", "fail"]
    )
    assert "AC-3" in failing.output and "IA-5 " not in failing.output
    as_json = runner.invoke(
        cli, ["compliance", str(FIXTURE), "--framework", "cis-postgresql-16-1.0.0", "--json"]
    )
    (framework,) = json.loads(as_json.output)
    control = next(c for c in framework["controls"] if c["id"] == "4.2")
    assert control["status"] == "fail"
    assert control["rules"] == ["PGW-ADM-001", "PGW-ROLE-001", "PGW-ROLE-002"]


def test_unknown_framework_and_old_results_are_one_line_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(cli, ["compliance", str(FIXTURE), "--framework", "pci-dss-4"])
    assert unknown.exit_code == 2 and "not in these results" in unknown.output
    # Without the section, the rules' controls and the coverage judge it again.
    trimmed = json.loads(FIXTURE.read_text("utf-8"))
    del trimmed["compliance"]
    path = tmp_path / "trimmed.json"
    path.write_text(json.dumps(trimmed), encoding="utf-8")
    again = runner.invoke(cli, ["compliance", str(path), "--json"])
    whole = runner.invoke(cli, ["compliance", str(FIXTURE), "--json"])
    assert again.exit_code == 0, again.output
    judged = {f["id"]: f for f in json.loads(again.output)}
    assert set(judged) == {f["id"] for f in json.loads(whole.output)}
    control = next(c for c in judged["cis-postgresql-16-1.0.0"]["controls"] if c["id"] == "4.2")
    assert control["status"] == "fail"
    # Without controls either (results schema 1.0), nothing to judge by.
    old = json.loads(FIXTURE.read_text("utf-8"))
    old["schema_version"] = "1.0"
    del old["compliance"]
    for rule in old["rules"]:
        rule.pop("controls", None)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    refused = runner.invoke(cli, ["compliance", str(path)])
    assert refused.exit_code == 2 and "no compliance section" in refused.output


def test_a_piped_table_is_wide_unless_columns_says_otherwise() -> None:
    # Piped (a CI log), the control table takes 200 columns rather than wrap every cell;
    # an explicit COLUMNS is obeyed.
    args = ["compliance", str(FIXTURE), "--framework", "cis-postgresql-16-1.0.0"]
    wide = CliRunner().invoke(cli, args, env={"COLUMNS": ""})
    narrow = CliRunner().invoke(cli, args, env={"COLUMNS": "80"})
    assert wide.exit_code == narrow.exit_code == 0
    assert max(len(line) for line in wide.output.splitlines()) > 80
    assert max(len(line) for line in narrow.output.splitlines()) <= 80
