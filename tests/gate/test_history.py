"""The history store: SQLite and PostgreSQL backends, and what a bad store looks like."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from pgwarden.cli.tables import MAX_DIFF_LINES, diff_lines
from pgwarden.gate.history.records import StoredFinding, compare_server
from pgwarden.gate.history.store import HistoryStore
from pgwarden.model.errors import ConfigError, UsageError
from pgwarden.model.results import (
    Results,
)
from tests.calls import counted_calls
from tests.gate.conftest import Workspace, config_text, public_connect_run

RULE = "PGW-ISO-001"


def _finding(resource: str, status: str = "fail", rule: str = RULE) -> StoredFinding:
    return StoredFinding(
        fingerprint=f"{rule}:{resource}",
        rule_id=rule,
        severity="high",
        status=status,  # type: ignore[arg-type]
        server="s",
        app=None,
        resource=resource,
        principal="PUBLIC",
        message="m",
    )


def test_compare_trusts_only_rules_that_ran_on_both_sides() -> None:
    before = [_finding("database/a"), _finding("database/b"), _finding("role/x", rule="PGW-X-1")]
    after = [_finding("database/b", "waived"), _finding("database/c"), _finding("err", "error")]
    change = compare_server("s", before, after, before_ran={RULE}, after_ran={RULE})
    assert [f.resource for f in change.new] == ["database/c"]  # errors are never "new"
    assert [f.resource for f in change.resolved] == ["database/a"]  # PGW-X-1 did not run now
    assert [(a.status, b.status) for a, b in change.changed] == [("fail", "waived")]
    first_time = compare_server("s", [], after, before_ran=set(), after_ran={RULE})
    assert first_time.empty


def _history_database(workspace: Workspace) -> str:
    """A database pgwarden may write its history to, as a postgresql:// URI."""
    workspace.sql("CREATE DATABASE gate_history")
    server = workspace.server
    return (
        f"postgresql://{server.superuser}:{quote(server.password, safe='')}@{server.host}:"
        f"{server.port}/gate_history?sslmode=disable"
    )


def test_postgresql_history_backend(workspace: Workspace) -> None:
    uri = _history_database(workspace)
    workspace.create_database("alpha", public_connect=True)
    workspace.create_database("bravo", public_connect=False)
    workspace.write("pgwarden.toml", config_text({"alpha": "alpha", "bravo": "bravo"}))
    scan = ("scan", "--rules", RULE, "--json", "r.json", "-q")
    first = workspace.pgwarden(*scan, env={"PGWARDEN_HISTORY": uri})
    assert first.exit_code == 1, first.output
    one = workspace.json("r.json")
    assert one["history"]["run_id"] == 1
    # The store is shown without its password.
    server = workspace.server
    assert one["history"]["store"] == (
        f"postgresql://{server.superuser}@{server.host}:{server.port}/gate_history"
    )
    assert server.password not in (workspace.path / "r.json").read_text()

    workspace.sql(
        "REVOKE CONNECT, TEMPORARY ON DATABASE alpha FROM PUBLIC",
        "GRANT CONNECT ON DATABASE bravo TO PUBLIC",
    )
    second = workspace.pgwarden(*scan, "--history", uri)
    assert second.exit_code == 1, second.output
    two = workspace.json("r.json")
    assert (two["history"]["new"], two["history"]["resolved"]) == (1, 1)
    assert two["history"]["servers"][0]["previous_run"] == 1

    listed = workspace.pgwarden("history", "--json", env={"PGWARDEN_HISTORY": uri})
    assert listed.exit_code == 0, listed.output
    assert [(r["id"], r["new"], r["resolved"]) for r in json.loads(listed.stdout)] == [
        (2, 1, 1),
        (1, 0, 0),
    ]
    diff = workspace.pgwarden("diff", "latest~1", "latest", "--history", uri)
    assert diff.exit_code == 0, diff.output
    assert "shared-db: 1 new, 1 resolved, 0 changed status" in diff.stdout

    with psycopg.connect(workspace.server.dsn(dbname="gate_history")) as conn:
        rows = conn.execute(
            "SELECT r.id, f.status, f.resource, pg_typeof(r.started_at)::text "
            "FROM pgwarden_runs r JOIN pgwarden_findings f ON f.run_id = r.id ORDER BY r.id"
        ).fetchall()
    assert rows == [
        (1, "fail", "database/alpha", "timestamp with time zone"),
        (2, "fail", "database/bravo", "timestamp with time zone"),
    ]


def test_a_wrong_history_password_is_exit_2_without_the_password(workspace: Workspace) -> None:
    workspace.write("pgwarden.toml", config_text({}))
    server = workspace.server
    uri = f"postgresql://{server.superuser}:Wr0ngSecret@{server.host}:{server.port}/postgres"
    run = workspace.pgwarden("scan", "--history", uri, "--json", "r.json")
    assert run.exit_code == 2
    assert "Wr0ngSecret" not in run.output
    assert run.stderr.startswith(
        f"pgwarden: error: --history postgresql://{server.superuser}@{server.host}:{server.port}"
        "/postgres: "
    )
    assert "password authentication failed" in run.stderr
    assert not (workspace.path / "r.json").exists()  # nothing was scanned


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ("history", "--history", "none.sqlite"), "--history none.sqlite: no such file"),
        (
            None,
            ("scan", "--history", "no/such/dir/h.sqlite"),
            "--history no/such/dir/h.sqlite: directory no/such/dir does not exist",
        ),
        (
            "text",
            ("history", "--history", "h.sqlite"),
            "--history h.sqlite: file is not a database",
        ),
        (
            "newer",
            ("history", "--history", "h.sqlite"),
            "--history h.sqlite: written by a newer pgwarden",
        ),
        ("empty", ("diff", "1", "2", "--history", "h.sqlite"), "run '1': no such run"),
        ("empty", ("diff", "first", "2", "--history", "h.sqlite"), "run 'first': use a run id"),
    ],
)
def test_a_bad_history_store_is_one_line_and_exit_2(
    workspace: Workspace, setup: str | None, args: tuple[str, ...], message: str
) -> None:
    workspace.write("pgwarden.toml", config_text({}))
    path = workspace.path / "h.sqlite"
    if setup == "text":
        path.write_text("not a database at all, but long enough to have a header" * 4)
    elif setup in ("newer", "empty"):
        HistoryStore.open(str(path)).close()
        if setup == "newer":
            with sqlite3.connect(path) as db:
                db.execute("UPDATE pgwarden_meta SET value = '99' WHERE key = 'schema_version'")
    run = workspace.pgwarden(*args)
    assert run.exit_code == 2, run.output
    assert run.stderr.startswith(f"pgwarden: error: {message}"), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_open_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        HistoryStore.open(" ")
    with pytest.raises(ConfigError, match="is a directory"):
        HistoryStore.open(str(tmp_path))


def _fleet_run(servers: int, per_server: int, started: datetime) -> Results:
    """A run over ``servers`` servers, each failing PGW-ISO-001 on ``per_server`` databases."""
    names = [f"srv-{n:03d}" for n in range(servers)]
    databases = [f"db{d}" for d in range(per_server)]
    return public_connect_run(names, dict.fromkeys(names, databases), started)


def test_recording_a_fleet_reads_each_server_once_not_the_run_per_server(
    tmp_path: Path,
) -> None:
    # Twice the servers (and so twice the findings): twice the work to compare each
    # server with its previous run (Python calls counted, not timed); reading the whole
    # previous run once per server made it four times (200 servers, 50,000 findings: 98 s).
    def calls(servers: int) -> int:
        started = datetime(2026, 11, 1, tzinfo=UTC)
        with HistoryStore.open(str(tmp_path / f"h{servers}.db")) as store:
            store.record(_fleet_run(servers, 20, started))
            counted, second = counted_calls(
                lambda: store.record(_fleet_run(servers, 20, started + timedelta(days=1)))
            )
        assert second.history is not None and second.history.new == 0
        return counted

    small, large = calls(40), calls(80)
    assert large / small < 2.6, (small, large)


def test_a_diff_of_thousands_of_changes_prints_a_screenful_per_server(tmp_path: Path) -> None:
    started = datetime(2026, 11, 1, tzinfo=UTC)
    with HistoryStore.open(str(tmp_path / "h.db")) as store:
        store.record(_fleet_run(2, 5, started))
        store.record(_fleet_run(2, 500, started + timedelta(days=1)))
        before, after = store.run("latest~1"), store.run("latest")
        diff = store.diff(before, after)
    lines = diff_lines(diff)
    for server in ("srv-000", "srv-001"):
        assert f"{server}: 495 new, 0 resolved, 0 changed status" in lines
    assert (
        lines.count(
            f"  … and {495 - MAX_DIFF_LINES:,} more new (pgwarden diff --json lists every one)"
        )
        == 2
    )
    assert len([line for line in lines if line.startswith("  + ")]) == 2 * MAX_DIFF_LINES
