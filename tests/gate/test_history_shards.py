"""Shards of one scan record into one PostgreSQL history at the same moment, safely.

Each shard of a fleet scan (``--shard I/N --history postgresql://…``) opens the store
(the first ones create its tables), compares its servers with their previous runs and
records its run, all at once; every run must land whole, with its own id, and each
server's next run must compare with that server's own previous one.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import psycopg

from pgwarden.gate.history.store import HistoryStore
from pgwarden.model.results import (
    Results,
)
from tests.gate.conftest import Workspace, public_connect_run

SHARDS = 8
SERVERS_PER_SHARD = 5
RULE = "PGW-ISO-001"


def _part(shard: int, open_databases: dict[str, list[str]], started: datetime) -> Results:
    """One shard's results: its servers, each failing ISO-001 on its open databases."""
    servers = [f"srv-{shard}-{i}" for i in range(SERVERS_PER_SHARD)]
    return public_connect_run(servers, open_databases, started, shard=f"{shard}/{SHARDS}")


def _record_all_at_once(uri: str, parts: list[Results]) -> list[Results]:
    barrier = threading.Barrier(len(parts))
    recorded: list[Results | None] = [None] * len(parts)
    failures: list[BaseException] = []

    def record(index: int) -> None:
        try:
            barrier.wait()
            with HistoryStore.open(uri) as store:
                recorded[index] = store.record(parts[index])
        except BaseException as exc:  # reported below, with the shard it hit
            failures.append(exc)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(len(parts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert all(r is not None for r in recorded)
    return [r for r in recorded if r is not None]


def test_concurrent_shard_writers_each_record_a_whole_run(workspace: Workspace) -> None:
    workspace.sql("CREATE DATABASE shard_history")
    server = workspace.server
    uri = (
        f"postgresql://{server.superuser}:{quote(server.password, safe='')}@{server.host}:"
        f"{server.port}/shard_history?sslmode=disable"
    )
    day_one = datetime(2026, 12, 1, tzinfo=UTC)
    first = _record_all_at_once(
        uri,
        [
            _part(
                shard, {f"srv-{shard}-{i}": ["a", "b"] for i in range(SERVERS_PER_SHARD)}, day_one
            )
            for shard in range(SHARDS)
        ],
    )
    run_ids = sorted(r.history.run_id for r in first if r.history)
    assert run_ids == list(range(1, SHARDS + 1))  # every run whole, each its own id

    # The next day each shard finds "a" fixed on its first server: each server compares
    # with its own shard's previous run, whichever order the shards recorded in.
    day_two = day_one + timedelta(days=1)
    second = _record_all_at_once(
        uri,
        [
            _part(
                shard,
                {
                    f"srv-{shard}-{i}": (["b"] if i == 0 else ["a", "b"])
                    for i in range(SERVERS_PER_SHARD)
                },
                day_two,
            )
            for shard in range(SHARDS)
        ],
    )
    for shard, results in enumerate(second):
        assert results.history is not None
        assert (results.history.new, results.history.resolved) == (0, 1)
        by_server = {s.server: s for s in results.history.servers}
        fixed = by_server[f"srv-{shard}-0"]
        assert [r.resource for r in fixed.resolved] == ["database/a"]
        assert fixed.previous_run is not None and fixed.previous_run <= SHARDS
        ages = {f.age_days for f in results.findings}
        assert ages == {1}  # first seen on day one, in the shard's own earlier run

    with psycopg.connect(server.dsn(dbname="shard_history")) as conn:
        counts = conn.execute(
            "SELECT count(*), count(DISTINCT run_id) FROM pgwarden_run_servers"
        ).fetchone()
        findings = conn.execute("SELECT count(*) FROM pgwarden_findings").fetchone()
    assert counts == (2 * SHARDS * SERVERS_PER_SHARD, 2 * SHARDS)
    assert findings == (SHARDS * SERVERS_PER_SHARD * 2 + SHARDS * (2 * SERVERS_PER_SHARD - 1),)
