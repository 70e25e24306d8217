"""The floor: what visiting every database costs with no scanner at all.

A bare psycopg loop: one connection to the DSN's database lists the databases (as
pgwarden's first query does), then a pool of ``--jobs`` threads opens one connection
per database and runs ``SELECT 1``. The same targets, the same credentials and the same
parallelism as ``pgwarden scan --jobs N``; nothing else. Run as its own process
(``python -m benchmarks.floor``) so its wall time, like the scan's, includes starting
Python; it prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg

# The databases pgwarden reads in detail: connectable, not templates, not system ones.
TARGETS = """
SELECT datname FROM pg_database
WHERE datallowconn AND NOT datistemplate
  AND datname NOT IN ('postgres', 'template0', 'template1', 'azure_maintenance', 'azure_sys')
"""


def visit(dsn: str, dbname: str) -> None:
    with psycopg.connect(dsn, dbname=dbname, autocommit=True) as conn:
        conn.execute("SELECT 1").fetchall()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    parser.add_argument("--dsn-env", required=True, help="variable holding the DSN")
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args(argv)
    dsn = os.environ[args.dsn_env]
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        databases = [row[0] for row in conn.execute(TARGETS)]
        with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, len(databases)))) as pool:
            list(pool.map(lambda name: visit(dsn, name), databases))
    elapsed = time.perf_counter() - started
    json.dump(
        {"loop_seconds": elapsed, "databases": len(databases), "connections": len(databases) + 1},
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
