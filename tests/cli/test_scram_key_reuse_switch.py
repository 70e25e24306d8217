"""``--no-scram-key-reuse`` and ``[policy] scram_key_reuse``: every login uses the
password, and the snapshot reads the same."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pgwarden.cli.demo import AUDITOR, DEMO_CONFIG, DEMO_DSN_VARIABLE, SeedServer
from tests.cli import run_pgwarden

FAST = DEMO_CONFIG.replace(
    "[policy]\n", "[policy]\nsession_samples = 1\nsession_window_seconds = 0\n", 1
)
# The -vv line the collection ends with, per server.
STATS_LINE = re.compile(
    r"\d+ statement\(s\) over (\d+) connection\(s\)( \(SCRAM keys derived once\))?;"
)


def _collect(work: Path, env: dict[str, str], *args: str) -> tuple[dict[str, Any], bool]:
    """Collect with ``-vv``: the server's PostgreSQL snapshot, and whether the stats
    line says the keys were derived once (checked against the snapshot's own count)."""
    run = run_pgwarden("-vv", "collect", "-o", "snap.json", "-q", *args, env=env, cwd=work)
    assert run.returncode == 0, run.stderr
    lines = [m for m in map(STATS_LINE.search, run.stderr.splitlines()) if m]
    assert len(lines) == 1, run.stderr
    postgres: dict[str, Any] = json.loads((work / "snap.json").read_text())["servers"][0][
        "postgres"
    ]
    assert int(lines[0].group(1)) == postgres["stats"]["connections"]
    derived = lines[0].group(2) is not None
    assert postgres["stats"]["derived_keys"] is derived
    return postgres, derived


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "pgwarden.toml").write_text(FAST)
    return tmp_path


def test_the_flag_and_the_policy_switch_key_reuse_off(seed_server: SeedServer, work: Path) -> None:
    env = {DEMO_DSN_VARIABLE: seed_server.dsn(AUDITOR)}
    with_keys, derived = _collect(work, env)
    assert derived
    flagged, derived = _collect(work, env, "--no-scram-key-reuse")
    assert not derived
    # No login checks derived keys: one connection fewer, the same catalog state.
    assert flagged["stats"]["connections"] == with_keys["stats"]["connections"] - 1
    catalog = ("stats", "sessions")
    assert {k: v for k, v in flagged.items() if k not in catalog} == {
        k: v for k, v in with_keys.items() if k not in catalog
    }
    (work / "pgwarden.toml").write_text(
        FAST.replace("[policy]\n", "[policy]\nscram_key_reuse = false\n", 1)
    )
    _configured, derived = _collect(work, env)
    assert not derived


def test_scan_takes_the_flag(seed_server: SeedServer, work: Path) -> None:
    env = {DEMO_DSN_VARIABLE: seed_server.dsn(AUDITOR)}
    run = run_pgwarden(
        "-vv", "scan", "--no-scram-key-reuse", "--json", "results.json", "-q", env=env, cwd=work
    )
    assert run.returncode == 1, run.stderr  # the seed server's findings
    lines = [m for m in map(STATS_LINE.search, run.stderr.splitlines()) if m]
    assert len(lines) == 1 and lines[0].group(2) is None, run.stderr
    assert json.loads((work / "results.json").read_text())["findings"]
