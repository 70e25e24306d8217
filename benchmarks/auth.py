"""How the throwaway server authenticates: SCRAM (as initdb set it up) or ``trust``.

With ``trust`` a login costs no PBKDF2 on either side, so the scan's own catalog reads
weigh most; with SCRAM the floor pays what the scan pays (``benchmarks.floor``). The
method is switched in ``pg_hba.conf`` and the server reloaded; the databases stay.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from pgwarden.cli.localpg import LocalServer

METHODS = {"scram": "scram-sha-256", "trust": "trust"}
# The variable the floor reads the auditor's SCRAM iteration count and salt from.
SCRAM_VARIABLE = "PGWARDEN_BENCH_SCRAM"
WRONG_PASSWORD = "not-the-password"


def can_switch(server: LocalServer) -> bool:
    """Whether this server's ``pg_hba.conf`` is on this machine (not in a container)."""
    return server.data_dir is not None and (server.data_dir / "pg_hba.conf").exists()


def set_authentication(server: LocalServer, method: str, probe_dsn: str) -> None:
    """Make every ``pg_hba.conf`` line use ``method`` (``scram`` or ``trust``), reload,
    and wait until a login of ``probe_dsn`` with a wrong password shows it took effect."""
    assert server.data_dir is not None
    hba = Path(server.data_dir) / "pg_hba.conf"
    lines = []
    for line in hba.read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            line = " ".join([*fields[:-1], METHODS[method]])
        lines.append(line)
    # Written in place: the file keeps its owner (the server's OS user).
    with hba.open("w") as handle:
        handle.write("\n".join(lines) + "\n")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while True:
        try:
            # A wrong password gets in only once trust is in force.
            psycopg.connect(probe_dsn, password=WRONG_PASSWORD, connect_timeout=5).close()
            trusted = True
        except psycopg.OperationalError:
            trusted = False
        if trusted == (method == "trust"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not switch to {method} authentication")
        time.sleep(0.1)


def scram_verifier(server: LocalServer, role: str) -> str:
    """``ITERATIONS:SALT`` of ``role``'s SCRAM verifier (what the floor derives keys with)."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    if row is None or not str(row[0]).startswith("SCRAM-SHA-256$"):
        raise RuntimeError(f"{role} has no SCRAM verifier")
    iterations, salt = str(row[0]).split("$")[1].split(":")
    return f"{iterations}:{salt}"
