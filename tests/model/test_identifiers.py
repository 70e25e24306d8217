"""Quoting names for remediation SQL: PostgreSQL reads each quoted name back to itself,
and a name that is not printable never reaches a script, report or terminal raw."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgwarden.access.remediation import in_database
from pgwarden.cli.localpg import LocalServer
from pgwarden.model.identifiers import printable, quote_ident, quote_literal
from tests.pgserver import reset_server

# Names PostgreSQL accepts (any character but NUL), the awkward ones above all.
NAMES = [
    "plain",
    "Mixed Case",
    'quote"d',
    "back\\slash",
    "select",
    "emoji 😀 é",
    "line\nbreak\r\ttab",
    "esc\x1b[31mred\x07",
    "rlo\u202etxt.exe",
    "zero\u200bwidth",
    "del\x7f and c1\x85",
    "tag\U000e0041 and private\U0010fffd",
    "\\\"\x1b'",
]


@pytest.mark.parametrize("name", NAMES)
def test_quoted_text_holds_no_character_that_is_not_printable(name: str) -> None:
    for quoted in (quote_ident(name), quote_literal(name), printable(name)):
        assert quoted.isprintable(), quoted


def test_postgresql_reads_each_quoted_name_back_to_itself(clean_server: LocalServer) -> None:
    with psycopg.connect(clean_server.dsn(), autocommit=True) as conn:
        for n, name in enumerate(NAMES):
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
            # The remediation's own text, run as a script would run it.
            conn.execute(f"ALTER ROLE {quote_ident(name)} CONNECTION LIMIT {n + 1}")
            limit = conn.execute(
                "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (name,)
            ).fetchone()
            assert limit == (n + 1,), name
            for conforming in ("on", "off"):
                conn.execute(f"SET standard_conforming_strings = {conforming}")
                same = conn.execute(f"SELECT {quote_literal(name)} = %s", (name,)).fetchone()
                assert same == (True,), (name, conforming)
            conn.execute("RESET standard_conforming_strings")
    reset_server(clean_server)


def test_printable_escapes_as_python_does() -> None:
    assert printable("a\nb\x1b\u202ec") == "a\\nb\\x1b\\u202ec"
    assert printable("émoji 😀 and space") == "émoji 😀 and space"


@pytest.mark.parametrize(
    "database", ["plain_db", "Mixed Case", "a=b/c,\"x\"='y'", "postgresql://not-a-uri"]
)
def test_the_psql_hint_of_a_script_reaches_its_database(
    clean_server: LocalServer, database: str
) -> None:
    psql = shutil.which("psql") or (
        str(clean_server.bindir / "psql") if clean_server.bindir else None
    )
    if psql is None or not Path(psql).exists():
        pytest.skip("no psql")
    with psycopg.connect(clean_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    hint = in_database(database)
    command = hint.split("(psql: ", 1)[1].removesuffix(")")
    run = subprocess.run(
        [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", clean_server.dsn()],
        input=f"{command}\nSELECT current_database();\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == database
    reset_server(clean_server)


def test_a_database_psql_cannot_name_says_so() -> None:
    hint = in_database("line\nbreak")
    assert hint.isprintable()
    assert "psql's \\connect cannot name it" in hint
    assert 'U&"line\\000Abreak"' in hint


# Printable names, plain and not: quoted here as PostgreSQL's own quote_ident quotes them
# (plain lower-case words take a path of their own, before the cache).
PRINTABLE = [
    "t_001",
    "_x",
    "_1",
    "x1",
    "a$b",
    "Abc",
    "aBc",
    "ü",
    "é_x",
    "select",
    "user",
    "a b",
    "1a",
    "a-b",
    "x" * 63,
    "table",
    "name",
    "t_ä",
    "order_items",
    "g2",
]


def test_names_are_quoted_as_postgresql_quotes_them(clean_server: LocalServer) -> None:
    with psycopg.connect(clean_server.dsn(), autocommit=True) as conn:
        for name in PRINTABLE:
            theirs = conn.execute("SELECT quote_ident(%s)", (name,)).fetchone()
            assert theirs == (quote_ident(name),), name
