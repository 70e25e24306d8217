"""ACL items read from their text form, checked against the server's own aclexplode."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres.acl import (
    AclSyntaxError,
    grantee_prefix,
    parse_acl,
    parse_acl_item,
)
from pgwarden.collect.postgres.session import connect
from pgwarden.model.snapshot import AclItem

pytestmark = pytest.mark.versioned

# Names aclitemout must quote: quotes, the item's own separators, spaces, backslashes,
# braces and commas (which the array around the items quotes again), non-ASCII, and
# names that look like a privilege list or an empty grantee.
NAMES = (
    "plain_role",
    'say "hi"',
    "a=b/c",
    "x,y {z}",
    "back\\slash",
    "Ünïcødé",
    "arwd",
    '"',
    "=",
    "*",
)
DATABASE = "pgw_acl_test"


def test_items_are_read_with_their_grantable_privileges() -> None:
    assert parse_acl_item("app_ro=r/app_owner") == AclItem(
        grantee="app_ro", grantor="app_owner", privileges=("SELECT",)
    )
    assert parse_acl_item("=Tc/owner") == AclItem(
        grantee=None, grantor="owner", privileges=("CONNECT", "TEMPORARY")
    )
    assert parse_acl_item('"a ""b"""=a*rw/"x/y"') == AclItem(
        grantee='a "b"',
        grantor="x/y",
        privileges=("INSERT", "SELECT", "UPDATE"),
        grantable=("INSERT",),
    )
    assert parse_acl(None) == ()


@pytest.mark.parametrize(
    "text",
    ["app_ro=r", "app_ro=q/owner", "app_ro", '"unterminated=r/owner', "app_ro=r/", '"a"x=r/o'],
)
def test_unreadable_items_are_refused(text: str) -> None:
    with pytest.raises(AclSyntaxError):
        parse_acl_item(text)


@pytest.fixture(scope="module")
def acl_database(pg_server: LocalServer) -> Iterator[str]:
    """A table granted to every awkward name, some with grant option, some by another grantor."""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        for name in NAMES:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    with psycopg.connect(pg_server.dsn(dbname=DATABASE), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int)")
        for index, name in enumerate(NAMES):
            role = sql.Identifier(name)
            privileges = sql.SQL(["SELECT", "SELECT, INSERT", "ALL"][index % 3])
            option = sql.SQL(" WITH GRANT OPTION" if index % 2 else "")
            conn.execute(sql.SQL("GRANT {} ON t TO {}{}").format(privileges, role, option))
        # A grant made by a grantee that holds the grant option: a second grantor.
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(NAMES[1])))
        conn.execute(sql.SQL("GRANT SELECT ON t TO {}").format(sql.Identifier(NAMES[2])))
        conn.execute("RESET ROLE")
        conn.execute("GRANT SELECT ON t TO PUBLIC")
    yield DATABASE
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(DATABASE)))
        for name in NAMES:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_parsed_acls_match_aclexplode(pg_server: LocalServer, acl_database: str) -> None:
    with connect(pg_server.dsn(dbname=acl_database)) as conn:
        row = conn.execute("SELECT relacl AS acl FROM pg_class WHERE relname = 't'").fetchone()
        assert row is not None
        parsed = parse_acl(row["acl"])
        exploded = conn.execute(
            "SELECT CASE WHEN grantee = 0 THEN NULL ELSE pg_get_userbyid(grantee)::text END"
            " AS grantee, pg_get_userbyid(grantor)::text AS grantor,"
            " privilege_type AS privilege, is_grantable AS grantable"
            " FROM pg_class, aclexplode(relacl) WHERE relname = 't'"
        ).fetchall()
    ours = {
        (item.grantee, item.grantor, privilege, privilege in item.grantable)
        for item in parsed
        for privilege in item.privileges
    }
    theirs = {(r["grantee"], r["grantor"], r["privilege"], r["grantable"]) for r in exploded}
    assert ours == theirs
    assert {item.grantee for item in parsed} >= {*NAMES, None}
    assert len(parsed) == len({(item.grantee, item.grantor) for item in parsed})


def test_an_items_grantee_is_told_by_its_prefix_only_where_it_is_written_bare(
    pg_server: LocalServer, acl_database: str
) -> None:
    with connect(pg_server.dsn(dbname=acl_database)) as conn:
        query = "SELECT relacl::text[] AS acl FROM pg_class WHERE relname = 't'"
        row = conn.execute(query).fetchone()
    assert row is not None
    texts = row["acl"]
    for name in NAMES:
        prefix = grantee_prefix(name)
        if prefix is None:
            continue
        for text in texts:
            assert text.startswith(prefix) == (parse_acl_item(text).grantee == name), text
    assert grantee_prefix("plain_role") == "plain_role="
    # A name aclitemout may quote is never told by a prefix.
    assert {n for n in NAMES if grantee_prefix(n) is not None} == {"plain_role", "arwd"}
