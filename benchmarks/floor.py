"""The floor: what visiting every database costs with no scanner at all.

A bare psycopg loop: one connection to the DSN's database lists the databases (as
pgwarden's first query does), then a pool of ``--jobs`` threads opens one connection
per database and runs ``SELECT 1``. The same targets, the same credentials and the same
parallelism as ``pgwarden scan --jobs N``; nothing else. (``--reads catalog``
measures the catalog floor instead: see ``catalog_reads``.) Run as its own process
(``python -m benchmarks.floor``) so its wall time, like the scan's, includes starting
Python; it prints one JSON line.

The same login cost as the scan, too: pgwarden derives a SCRAM login's keys once
and logs in to each database with them (libpq 18), so, given ``--scram-env`` (the
role's iteration count and salt, which the benchmark reads from the server), the
floor does the same: one PBKDF2, then each login with the keys. Otherwise a saving in
logins would pass for a saving in the scan. With ``trust`` nobody pays anything.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from benchmarks.options import JOBS

# The databases pgwarden reads in detail: connectable, not templates, not system ones.
TARGETS = """
SELECT datname FROM pg_database
WHERE datallowconn AND NOT datistemplate
  AND datname NOT IN ('postgres', 'template0', 'template1', 'azure_maintenance', 'azure_sys')
"""


LIBPQ_WITH_SCRAM_KEYS = 180000


def scram_keys(password: str, verifier: str) -> dict[str, str]:
    """Connection parameters that log in with keys derived once from ``password``.

    ``verifier`` is ``ITERATIONS:SALT`` (base64), as the role's SCRAM verifier holds them.
    """
    iterations, salt = verifier.split(":", 1)
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return {
        "scram_client_key": base64.b64encode(client).decode(),
        "scram_server_key": base64.b64encode(server).decode(),
        "require_auth": "scram-sha-256",
        "password": "",
    }


# ``--reads catalog``: what each database costs a scanner that must read the catalogs
# pgwarden reads, with nothing of pgwarden's own: its sessions' settings and its one
# round trip of catalog statements (``DATABASE_OBJECTS``), every row fetched, none
# parsed. The scan against this floor is pgwarden's own cost; this floor against the
# bare one is the cost of the reads themselves. (Imported only then: the bare floor
# starts no more Python than a bare psycopg loop.)


def catalog_reads() -> tuple[str, dict[str, str]]:
    """pgwarden's per-database statements, and the settings of its sessions."""
    from pgwarden.collect.postgres.queries import DATABASE_OBJECTS
    from pgwarden.collect.postgres.session import APPLICATION_NAME, SessionSettings

    session = {"application_name": APPLICATION_NAME, "options": SessionSettings().options(None)}
    return "; ".join(DATABASE_OBJECTS), session


def visit(
    dsn: str, dbname: str, login: dict[str, str], reads: tuple[str, dict[str, str]] | None
) -> None:
    statements, session = reads if reads is not None else ("SELECT 1", {})
    conninfo = make_conninfo(dsn, dbname=dbname, **login, **session)
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(statements)
        cur.fetchall()
        while cur.nextset():
            cur.fetchall()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    parser.add_argument("--dsn-env", required=True, help="variable holding the DSN")
    parser.add_argument("--jobs", type=JOBS, default=4, help="parallel connections (1 to 64)")
    parser.add_argument(
        "--scram-env", help="variable holding ITERATIONS:SALT of the role's SCRAM verifier"
    )
    parser.add_argument(
        "--reads",
        choices=("none", "catalog"),
        default="none",
        help="none: SELECT 1 per database (the floor); catalog: pgwarden's catalog "
        "statements per database, rows fetched and not parsed (the catalog floor)",
    )
    args = parser.parse_args(argv)
    dsn = os.environ.get(args.dsn_env)
    if not dsn:
        parser.error(f"--dsn-env: ${args.dsn_env} is not set")
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # Never the DSN itself: it holds the password.
        parser.error(f"--dsn-env: ${args.dsn_env} is not a PostgreSQL connection string")
    try:
        return _loop(dsn, args.jobs, args.reads, args.scram_env)
    except psycopg.Error as exc:
        said = str(exc).strip().splitlines() or [""]
        print(f"{parser.prog}: error: {type(exc).__name__}: {said[0]}", file=sys.stderr)
        return 2


def _loop(dsn: str, jobs: int, reads_kind: str, scram_env: str | None) -> int:
    started = time.perf_counter()
    reads = catalog_reads() if reads_kind == "catalog" else None
    login: dict[str, str] = {}
    verifier = os.environ.get(scram_env) if scram_env else None
    if verifier and psycopg.pq.version() >= LIBPQ_WITH_SCRAM_KEYS:
        login = scram_keys(str(conninfo_to_dict(dsn)["password"]), verifier)
    with psycopg.connect(dsn, autocommit=True) as conn:
        databases = [row[0] for row in conn.execute(TARGETS)]
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(databases)))) as pool:
            list(pool.map(lambda name: visit(dsn, name, login, reads), databases))
    elapsed = time.perf_counter() - started
    json.dump(
        {
            "loop_seconds": elapsed,
            "databases": len(databases),
            "connections": len(databases) + 1,
            "derived_keys": bool(login),
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
