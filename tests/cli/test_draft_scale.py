"""``pgwarden init`` on a big server: drafting follows the roles and what each reaches,
never every role against every database, and the draft's lines stay short.

Work is counted in bytecode steps at two sizes (``tests.calls.counted_steps``), never
timed.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from pgwarden.cli.draft_map import auditor_sql
from pgwarden.cli.draft_tenancy import guess_tenancy
from pgwarden.cli.localpg import LocalServer
from pgwarden.model.evidence import MAX_LISTED
from tests.calls import counted_steps
from tests.perf.shapes import unmapped_logins_snapshot
from tests.pgserver import reset_server


def _drafting_steps(apps: int, logins: int) -> int:
    pg = unmapped_logins_snapshot(apps, logins).servers[0].postgres
    assert pg is not None
    steps, guess = counted_steps(lambda: guess_tenancy(pg))
    assert guess.apps
    return steps


def test_drafting_costs_roles_plus_databases_not_their_product() -> None:
    # Twice the apps (one database each) and twice the logins. What each role reaches
    # was listed by walking every database of the server for every role, and each
    # database's detail found by a search of them all.
    small, large = _drafting_steps(200, 200), _drafting_steps(400, 400)
    assert large / small < 2.2, (small, large)


def test_the_auditor_sql_of_many_databases_is_a_loop_that_grants_each(
    clean_server: LocalServer,
) -> None:
    names = [f"shop_{n:02d}" for n in range(MAX_LISTED + 5)]
    with psycopg.connect(clean_server.dsn(), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name))
            )
        script = auditor_sql(names, role="draft_auditor")
        assert len(script.splitlines()) < 12
        conn.execute(script.replace("'<choose one>'", "'x'"))
        granted = conn.execute(
            "SELECT datname FROM pg_database "
            "WHERE has_database_privilege('draft_auditor', oid, 'CONNECT') AND datname LIKE 'shop%'"
            " ORDER BY 1"
        ).fetchall()
    assert [row[0] for row in granted] == names
    reset_server(clean_server)
