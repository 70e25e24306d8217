"""The benchmark's synthetic server, built small on the test session's real server and
scanned as a user would (``pgwarden scan --json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from benchmarks.scenario import DSN_VARIABLE, Plan, SyntheticServer
from pgwarden.cli.localpg import LocalServer
from pgwarden.cli.main import cli
from tests.pgserver import reset_server

# Small enough to build twice in seconds; every planted mistake of the scenario has a
# chance (a seed whose small server plants most of them).
SMALL = Plan(seed=11, apps=4, tables=3, unmapped_share=0.3, public_connect_share=0.5)
DATABASES, ROLES = 12, 120


def grown(server: LocalServer, plan: Plan, out: Path) -> tuple[Path, str]:
    """``server`` emptied and grown to ``plan`` (``SMALL`` or a variant of it) at
    ``DATABASES`` and ``ROLES``: its tenancy map in ``out`` (no session sampling
    window), and the auditor's DSN."""
    reset_server(server)
    synthetic = SyntheticServer(server, plan)
    synthetic.grow(DATABASES, ROLES)
    config = out / "pgwarden.toml"
    config.write_text(synthetic.config_toml(session_window_seconds=0), encoding="utf-8")
    return config, synthetic.dsn()


def scanned(config: Path, dsn: str, results: Path) -> dict[str, Any]:
    """``pgwarden scan --json`` of the grown server: its results, the gate failed by
    the planted mistakes."""
    scan = CliRunner().invoke(
        cli,
        ["scan", "--config", str(config), "--json", str(results), "--jobs", "2"],
        env={DSN_VARIABLE: dsn},
    )
    assert scan.exit_code == 1, scan.output  # the planted mistakes fail the gate
    data: dict[str, Any] = json.loads(results.read_text(encoding="utf-8"))
    return data
