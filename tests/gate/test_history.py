"""The history store: SQLite and PostgreSQL backends, and what a bad store looks like."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from pgwarden.cli.tables import MAX_DIFF_LINES, diff_lines
from pgwarden.gate.history.records import StoredFinding, compare_server
from pgwarden.gate.history.sqlite import SqliteBackend
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


def _record_steps(store: HistoryStore, results: Results) -> int:
    """Thousands of SQLite virtual-machine steps that recording ``results`` took."""
    backend = store._db
    assert isinstance(backend, SqliteBackend)
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    backend.conn.set_progress_handler(tick, 1000)
    try:
        store.record(results)
    finally:
        backend.conn.set_progress_handler(None, 0)
    return steps


def test_recording_costs_the_same_however_long_the_history(tmp_path: Path) -> None:
    # A stable server recorded day after day: a run's recording looks up each finding's
    # first_seen without visiting every earlier run that saw it (SQLite's steps counted,
    # not timed). Read from the findings, day 61 cost 3.9 times day 11 here; after 100
    # daily runs of 16,000 findings, it took 0.27 s of each recording, 2.7 ms more a run.
    started = datetime(2026, 1, 1, tzinfo=UTC)
    steps: list[int] = []
    with HistoryStore.open(str(tmp_path / "h.db")) as store:
        for day in range(61):
            run = _fleet_run(2, 100, started + timedelta(days=day))
            if day in (10, 60):
                steps.append(_record_steps(store, run))
            else:
                store.record(run)
        last = store.record(_fleet_run(2, 100, started + timedelta(days=61)))
    assert steps[1] / steps[0] < 1.25, steps
    assert {(f.first_seen, f.age_days) for f in last.findings} == {(started, 61)}


def _first_seen_rows(execute: Callable[[str], list[tuple[Any, ...]]]) -> list[tuple[str, str]]:
    rows = execute("SELECT fingerprint, first_seen FROM pgwarden_first_seen ORDER BY 1")
    return [(str(f), str(t)) for f, t in rows]


def _an_older_store(
    location: str, execute: Callable[[str], list[tuple[Any, ...]]]
) -> list[tuple[str, str]]:
    """Runs recorded at ``location`` (one of them a snapshot older than the runs before
    it), then the store put back as history schema 1 wrote it; what first_seen was."""
    started = datetime(2026, 3, 1, tzinfo=UTC)
    with HistoryStore.open(location) as store:
        store.record(_fleet_run(2, 3, started))
        store.record(_fleet_run(2, 5, started + timedelta(days=2)))
        # Recorded third, started first: its findings were seen before either run.
        store.record(_fleet_run(1, 4, started - timedelta(days=5)))
    before = _first_seen_rows(execute)
    assert len(before) == 10
    execute("DROP TABLE pgwarden_first_seen")
    execute("CREATE INDEX pgwarden_findings_fingerprint ON pgwarden_findings (fingerprint, run_id)")
    execute("UPDATE pgwarden_meta SET value = '1' WHERE key = 'schema_version'")
    return before


def _check_upgrade(location: str, execute: Callable[[str], list[tuple[Any, ...]]]) -> None:
    before = _an_older_store(location, execute)
    with HistoryStore.open(location) as store:
        assert _first_seen_rows(execute) == before
        assert execute("SELECT value FROM pgwarden_meta WHERE key = 'schema_version'") == [("2",)]
        later = store.record(_fleet_run(2, 5, datetime(2026, 3, 10, tzinfo=UTC)))
    first = {f.resource: (f.server, f.first_seen) for f in later.findings if f.server == "srv-000"}
    assert first == {
        **{f"database/db{d}": ("srv-000", datetime(2026, 2, 24, tzinfo=UTC)) for d in range(4)},
        "database/db4": ("srv-000", datetime(2026, 3, 3, tzinfo=UTC)),
    }


def test_a_store_of_history_schema_1_is_upgraded_with_its_first_seen_dates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.sqlite"

    def execute(query: str) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            return db.execute(query).fetchall()

    _check_upgrade(str(path), execute)
    # The findings' index by fingerprint served only what pgwarden_first_seen holds now.
    assert (
        execute("SELECT name FROM sqlite_master WHERE name = 'pgwarden_findings_fingerprint'") == []
    )


def test_a_postgresql_store_of_history_schema_1_is_upgraded(workspace: Workspace) -> None:
    uri = _history_database(workspace)

    def execute(query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(workspace.server.dsn(dbname="gate_history")) as conn:
            cursor = conn.execute(query)
            return cursor.fetchall() if cursor.description else []

    _check_upgrade(uri, execute)
    assert execute("SELECT to_regclass('pgwarden_findings_fingerprint')") == [(None,)]
