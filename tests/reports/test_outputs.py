"""Every registered format, through the CLI: ``pgwarden report RESULTS.json --FORMAT PATH``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pgwarden.cli.main import cli
from pgwarden.model.results import Results
from pgwarden.reports.registry import RENDERERS
from tests.reports.conftest import FIXTURE


def test_registry_names_every_format_and_its_default_file() -> None:
    assert {name: default for name, (_render, default) in RENDERERS.items()} == {
        "json": "results.json",
        "sarif": "results.sarif",
        "html": "report.html",
        "junit": "junit.xml",
        "markdown": "summary.md",
        "csv": "results.csv",
    }


def test_renderers_are_pure(results: Results) -> None:
    for render, _default in RENDERERS.values():
        assert render(results) == render(results)


def test_report_re_renders_a_saved_result_in_every_format(tmp_path: Path) -> None:
    options = []
    for name, (_render, default) in RENDERERS.items():
        options += [f"--{name}", str(tmp_path / default)]
    outcome = CliRunner().invoke(cli, ["report", str(FIXTURE), *options])
    assert outcome.exit_code == 0, outcome.output
    for _name, (_render, default) in RENDERERS.items():
        assert (tmp_path / default).stat().st_size > 0
    assert json.loads((tmp_path / "results.sarif").read_text("utf-8"))["version"] == "2.1.0"
    assert (tmp_path / "results.json").read_text("utf-8") == FIXTURE.read_text("utf-8")
    # One line per file written, however long its path (no wrapping in a CI log).
    wrote = [line for line in outcome.stderr.splitlines() if line.startswith("pgwarden: wrote")]
    assert wrote[0] == f"pgwarden: wrote the results JSON to {tmp_path / 'results.json'}"
    assert len(wrote) == len(RENDERERS)
    quiet = CliRunner().invoke(
        cli, ["report", str(FIXTURE), "--json", str(tmp_path / "q.json"), "-q"]
    )
    assert quiet.exit_code == 0 and "wrote" not in quiet.stderr


def test_a_format_that_cannot_be_written_does_not_cost_the_others(tmp_path: Path) -> None:
    # A file the kernel will not create (a folder that exists, where nothing may be
    # made: found only when writing): the Markdown after it is still written, and the
    # run ends with the one-line error (exit 2).
    outcome = CliRunner().invoke(
        cli,
        [
            "report",
            str(FIXTURE),
            "--json",
            "/proc/pgwarden-results.json",
            "--markdown",
            str(tmp_path / "summary.md"),
        ],
    )
    assert outcome.exit_code == 2
    assert "cannot write /proc/pgwarden-results.json" in outcome.output
    assert (tmp_path / "summary.md").stat().st_size > 0


def test_an_output_known_unwritable_stops_the_run_before_anything_is_written(
    tmp_path: Path,
) -> None:
    # The JSON's folder does not exist: known before anything is read, so nothing is.
    outcome = CliRunner().invoke(
        cli,
        [
            "report",
            str(FIXTURE),
            "--json",
            str(tmp_path / "missing" / "results.json"),
            "--markdown",
            str(tmp_path / "summary.md"),
        ],
    )
    assert outcome.exit_code == 2
    assert "there is no folder" in outcome.output
    assert not (tmp_path / "summary.md").exists()
