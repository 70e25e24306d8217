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
from pgwarden.model.results import Coverage, Results
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


def _with_rules(run: Results, rules: int) -> Results:
    """``run`` with ``rules`` more rules that passed on each of its servers."""
    passed = tuple(
        Coverage(rule_id=f"PGW-TEST-{n:03d}", server=s.name, outcome="passed")
        for s in run.servers
        for n in range(rules)
    )
    return run.model_copy(update={"coverage": (*run.coverage, *passed)})


def test_recording_costs_the_same_however_long_the_history(tmp_path: Path) -> None:
    # Two servers on which 41 rules ran, recorded day after day: a run's recording looks
    # up each finding's first_seen, and each rule's latest run on each server, without
    # visiting every earlier run (SQLite's steps counted, not timed). Read from the
    # findings and the coverage, day 61 cost 4.1 times day 11 here (58 and 236 thousand
    # steps; now 26 and 26); after 100 daily runs of 16,000 findings, first_seen alone
    # took 0.27 s of each recording, 2.7 ms more a run, and a fleet of 200 servers'
    # latest runs 5 ms more a run.
    started = datetime(2026, 1, 1, tzinfo=UTC)
    steps: list[int] = []
    with HistoryStore.open(str(tmp_path / "h.db")) as store:
        for day in range(61):
            run = _with_rules(_fleet_run(2, 100, started + timedelta(days=day)), 40)
            if day in (10, 60):
                steps.append(_record_steps(store, run))
            else:
                store.record(run)
        last = store.record(_fleet_run(2, 100, started + timedelta(days=61)))
    assert steps[1] / steps[0] < 1.25, steps
    assert {(f.first_seen, f.age_days) for f in last.findings} == {(started, 61)}


Execute = Callable[[str], list[tuple[Any, ...]]]

# What each older history schema lacked that the next one has: put back, in reverse.
_OLDER_SCHEMA = {
    1: (
        "DROP TABLE pgwarden_first_seen",
        "CREATE INDEX pgwarden_findings_fingerprint ON pgwarden_findings (fingerprint, run_id)",
        "UPDATE pgwarden_meta SET value = '1' WHERE key = 'schema_version'",
    ),
    2: (
        "DROP TABLE pgwarden_last_ran",
        "CREATE INDEX pgwarden_coverage_server ON pgwarden_coverage (server, rule_id, run_id)",
        "UPDATE pgwarden_meta SET value = '2' WHERE key = 'schema_version'",
    ),
}


def _kept_rows(execute: Execute) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    """What the store keeps as runs are recorded: first sightings, latest runs per rule."""
    first = execute("SELECT fingerprint, first_seen FROM pgwarden_first_seen ORDER BY 1")
    last = execute("SELECT server, rule_id, run_id FROM pgwarden_last_ran ORDER BY 1, 2")
    return [(str(f), str(t)) for f, t in first], [(str(s), str(r), int(i)) for s, r, i in last]


def _an_older_store(
    location: str, execute: Execute, version: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    """Runs recorded at ``location`` (one a snapshot older than the runs before it, one
    with a server's rule in error), then the store put back as history schema
    ``version`` wrote it; what it kept before."""
    started = datetime(2026, 3, 1, tzinfo=UTC)
    with HistoryStore.open(location) as store:
        store.record(_fleet_run(2, 3, started))
        store.record(_fleet_run(2, 5, started + timedelta(days=2)))
        # Recorded third, started first: its findings were seen before either run.
        store.record(_fleet_run(1, 4, started - timedelta(days=5)))
        # srv-001's rule in error: its latest run where the rule ran stays the second.
        erred = _fleet_run(2, 5, started + timedelta(days=3))
        coverage = tuple(
            c.model_copy(update={"outcome": "error", "reason": "refused"})
            if c.server == "srv-001"
            else c
            for c in erred.coverage
        )
        store.record(erred.model_copy(update={"coverage": coverage}))
    kept = _kept_rows(execute)
    assert len(kept[0]) == 10
    assert kept[1] == [("srv-000", RULE, 4), ("srv-001", RULE, 2)]
    for older in range(max(_OLDER_SCHEMA), version - 1, -1):
        for statement in _OLDER_SCHEMA[older]:
            execute(statement)
    return kept


def _check_upgrade(location: str, execute: Execute, version: int) -> None:
    kept = _an_older_store(location, execute, version)
    with HistoryStore.open(location) as store:
        assert _kept_rows(execute) == kept
        assert execute("SELECT value FROM pgwarden_meta WHERE key = 'schema_version'") == [("3",)]
        later = store.record(_fleet_run(2, 5, datetime(2026, 3, 10, tzinfo=UTC)))
    assert later.history is not None
    assert {s.server: s.previous_run for s in later.history.servers} == {
        "srv-000": 4,
        "srv-001": 2,
    }
    first = {f.resource: f.first_seen for f in later.findings if f.server == "srv-000"}
    assert first == {
        **{f"database/db{d}": datetime(2026, 2, 24, tzinfo=UTC) for d in range(4)},
        "database/db4": datetime(2026, 3, 3, tzinfo=UTC),
    }


@pytest.mark.parametrize("version", [1, 2])
def test_a_store_of_an_older_history_schema_is_upgraded_with_what_it_recorded(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "h.sqlite"

    def execute(query: str) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            return db.execute(query).fetchall()

    _check_upgrade(str(path), execute, version)
    # The indexes that served only what the kept tables now hold are gone.
    names = {n for (n,) in execute("SELECT name FROM sqlite_master WHERE name LIKE 'pgw%'")}
    assert names == {
        "pgwarden_meta",
        "pgwarden_runs",
        "pgwarden_run_servers",
        "pgwarden_coverage",
        "pgwarden_findings",
        "pgwarden_run_servers_server",
        "pgwarden_findings_server",
        "pgwarden_first_seen",
        "pgwarden_last_ran",
    }


def test_a_postgresql_store_of_history_schema_1_is_upgraded(workspace: Workspace) -> None:
    uri = _history_database(workspace)

    def execute(query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(workspace.server.dsn(dbname="gate_history")) as conn:
            cursor = conn.execute(query)
            return cursor.fetchall() if cursor.description else []

    _check_upgrade(uri, execute, 1)
    # The indexes that served only what the kept tables now hold are gone.
    assert execute(
        "SELECT to_regclass('pgwarden_findings_fingerprint'), "
        "to_regclass('pgwarden_coverage_server')"
    ) == [(None, None)]


def test_recording_a_fleet_reads_each_server_s_findings_not_the_run_s(tmp_path: Path) -> None:
    # Four times the servers (and findings): about four times SQLite's steps to record
    # the second run, not sixteen. Ordered by fingerprint in SQL, one server's previous
    # findings were read through the run's key (every finding of the run, then filtered)
    # and the previous run's record, with all its servers, once per server: 363 and
    # 4,608 thousand steps here (now 103 and 416); 1,000 servers of 5 findings took
    # 1.7 s to record, 2,000 took 7.6 s.
    def steps(servers: int) -> int:
        started = datetime(2026, 11, 1, tzinfo=UTC)
        with HistoryStore.open(str(tmp_path / f"f{servers}.db")) as store:
            store.record(_fleet_run(servers, 20, started))
            return _record_steps(store, _fleet_run(servers, 20, started + timedelta(days=1)))

    small, large = steps(50), steps(200)
    assert large / small < 5, (small, large)


def test_runs_deleted_by_hand_are_not_compared_with(tmp_path: Path) -> None:
    # Old runs deleted as docs/ci-and-audits.md says keep their first sightings; the
    # latest run deleted, even with SQLite's foreign keys off (its findings and coverage
    # left behind), is no previous run: the next one has nothing to compare with.
    path = tmp_path / "h.sqlite"
    started = datetime(2026, 1, 1, tzinfo=UTC)
    with HistoryStore.open(str(path)) as store:
        for day in range(4):
            store.record(_fleet_run(2, 3 + day, started + timedelta(days=day)))
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM pgwarden_runs WHERE started_at < '2026-01-03'")
    with HistoryStore.open(str(path)) as store:
        kept = store.record(_fleet_run(2, 7, started + timedelta(days=4)))
    assert kept.history is not None
    assert (kept.history.new, kept.history.resolved) == (2 * 1, 0)
    assert {f.resource: f.age_days for f in kept.findings if f.server == "srv-000"} == {
        f"database/db{d}": 4 - max(0, d - 2) for d in range(7)
    }
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("DELETE FROM pgwarden_runs WHERE id = 5")  # foreign keys off
    with HistoryStore.open(str(path)) as store:
        after = store.record(_fleet_run(2, 8, started + timedelta(days=5)))
    assert after.history is not None
    assert [s.previous_run for s in after.history.servers] == [None, None]
    assert (after.history.new, after.history.resolved) == (0, 0)
