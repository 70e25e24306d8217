"""Effective access: RoleGraph semantics (PG11-17) and PostgreSQL itself as the oracle."""

from __future__ import annotations

from typing import Any

import pytest

from pgwarden.access.grants import acl_accesses, can_connect, holds_at_login, ownership_access
from pgwarden.access.graph import RoleGraph
from pgwarden.access.privileges import acl_text
from pgwarden.access.remediation import revoke_membership, revoke_privileges, sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.cli.localpg import LocalServer
from pgwarden.engine import server_context
from pgwarden.model.snapshot import AclItem, Database, Membership
from tests.rules.scenario import App, build_scenario

# The role graph, the databases and what PostgreSQL itself answers for them.
Oracle = tuple[RoleGraph, dict[str, Database], dict[str, Any]]
pytestmark = pytest.mark.versioned


def grant(
    member: str,
    role: str,
    *,
    inherit: bool = True,
    set_: bool = True,
    admin: bool = False,
    grantor: str = "postgres",
) -> Membership:
    return Membership(
        role=role,
        member=member,
        grantor=grantor,
        admin_option=admin,
        inherit_option=inherit,
        set_option=set_,
    )


def test_admin_only_grant_gives_no_access() -> None:
    # PostgreSQL 16's createrole_self_grant: ADMIN, no INHERIT, no SET.
    graph = RoleGraph([grant("creator", "made", inherit=False, set_=False, admin=True)])
    assert graph.member_of("creator", "made") is None
    assert graph.paths("creator", "made") == ()
    assert graph.settable("creator") == {}
    assert graph.any_path("creator", "made") == ("creator", "made")
    assert graph.admin_of("creator") == ("made",)


def test_noinherit_grant_is_one_set_role_away() -> None:
    graph = RoleGraph([grant("a", "b", inherit=False), grant("b", "c")])
    path = graph.member_of("a", "c")
    assert path is not None
    assert (path.path, path.mode, path.set_role) == (("a", "b", "c"), "set role", "b")


def test_set_must_come_before_inherit() -> None:
    # a inherits b's privileges but may not SET ROLE b; b may SET ROLE c but does not
    # inherit it: a cannot use c at all (PostgreSQL 16: SET ROLE c needs SET all the way).
    graph = RoleGraph([grant("a", "b", set_=False), grant("b", "c", inherit=False)])
    assert graph.member_of("a", "b") is not None
    assert graph.member_of("a", "c") is None
    assert graph.paths("a", "c") == ()
    assert graph.classify(("a", "b", "c")) is None


def test_set_role_chain_without_inherit() -> None:
    graph = RoleGraph([grant("a", "b", inherit=False), grant("b", "c", inherit=False)])
    path = graph.member_of("a", "c")
    assert path is not None and path.mode == "set role" and path.set_role == "c"
    assert set(graph.settable("a")) == {"b", "c"}


def test_attributes_come_only_along_set_paths() -> None:
    # a inherits s (so uses its privileges) but may not SET ROLE s: s's attributes
    # (say SUPERUSER) never reach a that way; the second path, SET all the way, does.
    graph = RoleGraph([grant("a", "s", set_=False), grant("a", "g"), grant("g", "s")])
    assert [p.path for p in graph.paths("a", "s")] == [("a", "s"), ("a", "g", "s")]
    assert [p.path for p in graph.set_paths("a", "s")] == [("a", "g", "s")]
    assert set(graph.settable("a")) == {"g", "s"}


def test_every_path_is_found_for_revocation() -> None:
    graph = RoleGraph([grant("x", "y1"), grant("x", "y2"), grant("y1", "z"), grant("y2", "z")])
    assert [p.path for p in graph.paths("x", "z")] == [("x", "y1", "z"), ("x", "y2", "z")]
    assert graph.users_of("z").keys() == {"x", "y1", "y2"}


def test_grants_from_several_grantors_add_up_and_are_each_revoked() -> None:
    graph = RoleGraph(
        [
            grant("m", "g", inherit=False, set_=False, admin=True, grantor="admin"),
            grant("m", "g", inherit=True, grantor="other"),
        ]
    )
    assert graph.member_of("m", "g") is not None
    # Only the grant that gives access is revoked; the ADMIN-only one is administrative.
    assert revoke_membership(graph, "m", "g", 160004) == ["REVOKE g FROM m GRANTED BY other;"]
    assert revoke_membership(graph, "m", "g", 150008) == ["REVOKE g FROM m;"]
    both = RoleGraph([grant("m", "g", grantor="a1"), grant("m", "g", grantor="a2")])
    assert revoke_membership(both, "m", "g", 170000) == [
        "REVOKE g FROM m GRANTED BY a1;",
        "REVOKE g FROM m GRANTED BY a2;",
    ]


def test_revoke_privileges_is_issued_as_the_grantor() -> None:
    assert revoke_privileges(["SELECT"], "TABLE s.t", "r", "owner", "owner") == [
        "REVOKE SELECT ON TABLE s.t FROM r;"
    ]
    lines = revoke_privileges(["UPDATE", "SELECT"], "TABLE s.t", None, 'gr"antor', "owner")
    assert lines[1:] == [
        'SET ROLE "gr""antor";',
        "REVOKE SELECT, UPDATE ON TABLE s.t FROM PUBLIC;",
        "RESET ROLE;",
    ]


def test_acl_text_matches_postgresql() -> None:
    item = AclItem(grantee=None, grantor="Ad Min", privileges=("TEMPORARY", "CONNECT"))
    assert acl_text(item) == '=Tc/"Ad Min"'
    grantable = AclItem(grantee="a", grantor="b", privileges=("SELECT",), grantable=("SELECT",))
    assert acl_text(grantable) == "a=r*/b"


def test_sql_comment_cannot_be_escaped() -> None:
    assert sql_comment("a\nDROP TABLE t; --\r") == "-- a\\nDROP TABLE t; --\\r"


def test_public_and_membership_accesses() -> None:
    graph = RoleGraph([grant("app", "grp")])
    acl = [
        AclItem(grantee=None, grantor="o", privileges=("CONNECT", "TEMPORARY")),
        AclItem(grantee="grp", grantor="o", privileges=("CONNECT",)),
    ]
    found = acl_accesses(acl, "app", graph, ("CONNECT",))
    assert [a.via for a in found] == ["membership", "public"]
    assert found[0].chain('"db"') == 'app → grp → CONNECT on "db"'
    assert acl_accesses(acl, "app", graph, ("CONNECT",), include_public=False)[0].via == (
        "membership"
    )


# -- PostgreSQL as the oracle ------------------------------------------------------------

ROLES = ("a1", "b1", "c1", "d1", "n1", "a2", "n2", "c2", "x", "y1", "y2", "z", "lone")


@pytest.fixture(scope="module")
def oracle(pg_server: LocalServer) -> Oracle:
    scenario = build_scenario(
        pg_server,
        [App("only", ("db1",), ("a1",))],
        server_sql=[
            *(f"CREATE ROLE {r} NOLOGIN" for r in ROLES if r not in ("a1", "n1", "n2")),
            "CREATE ROLE n1 NOLOGIN NOINHERIT",
            "CREATE ROLE n2 NOLOGIN NOINHERIT",
            # A chain three deep, a NOINHERIT member of it, NOINHERIT in the middle, a diamond.
            "GRANT b1 TO a1",
            "GRANT c1 TO b1",
            "GRANT d1 TO c1",
            "GRANT b1 TO n1",
            "GRANT n2 TO a2",
            "GRANT c2 TO n2",
            "GRANT y1 TO x",
            "GRANT y2 TO x",
            "GRANT z TO y1",
            "GRANT z TO y2",
            "CREATE DATABASE db2",
            "CREATE DATABASE db3",
            "REVOKE ALL ON DATABASE db2, db3 FROM PUBLIC",
            "GRANT CONNECT ON DATABASE db2 TO c2, d1",
            "GRANT CONNECT ON DATABASE db3 TO z",
        ],
    )
    snapshot = scenario.collect()
    server = snapshot.servers[0]
    pg = server.postgres
    assert pg is not None
    graph = RoleGraph(pg.memberships)
    config = scenario.config
    # The rules ask the server's Tenancy, which answers from cached holders and groups.
    tenancy = Tenancy.of(server, server_context(server, config.server[0], config))
    dbs = {db.name: db for db in pg.databases if db.name in ("db1", "db2", "db3")}
    with scenario.superuser() as conn:
        truth = {
            (r, g): (usage, member)
            for r, g, usage, member in conn.execute(
                "SELECT r.rolname, g.rolname, pg_has_role(r.oid, g.oid, 'USAGE'), "
                "pg_has_role(r.oid, g.oid, 'MEMBER') FROM pg_roles r, pg_roles g "
                "WHERE r.rolname = ANY(%s) AND g.rolname = ANY(%s)",
                (list(ROLES), list(ROLES)),
            )
        }
        connect = {
            (r, d): ok
            for r, d, ok in conn.execute(
                "SELECT r.rolname, d.datname, has_database_privilege(r.oid, d.oid, 'CONNECT') "
                "FROM pg_roles r, pg_database d WHERE r.rolname = ANY(%s) "
                "AND d.datname IN ('db1', 'db2', 'db3')",
                (list(ROLES),),
            )
        }
    return graph, dbs, {"roles": truth, "connect": connect, "tenancy": tenancy}


def test_membership_agrees_with_pg_has_role(oracle: Oracle) -> None:
    graph, _, truth = oracle
    for (role, group), (usage, member) in truth["roles"].items():
        path = graph.holders(role).get(group)
        assert (path is not None) == member, (role, group)
        inherits = path is not None and path.mode in ("direct", "inherit")
        assert inherits == usage, (role, group, path)


def test_connect_agrees_with_has_database_privilege(
    oracle: Oracle,
) -> None:
    graph, dbs, truth = oracle
    assert not graph.always_inherits  # n1 and n2 are NOINHERIT: the full path search
    for (role, database), expected in truth["connect"].items():
        usable = [
            a
            for a in acl_accesses(dbs[database].acl, role, graph, ("CONNECT",))
            if a.via in ("public", "grant") or not a.needs_set_role
        ]
        assert bool(usable) == expected, (role, database, usable)
        assert can_connect(dbs[database], role, graph) == expected, (role, database)
        # Asked in an order where each database's cached holders serve later roles.
        assert truth["tenancy"].can_connect(dbs[database], role) == expected, (role, database)


def test_noinherit_chain_needs_set_role(oracle: Oracle) -> None:
    graph, dbs, _ = oracle
    (access,) = acl_accesses(dbs["db2"].acl, "a2", graph, ("CONNECT",))
    assert access.needs_set_role and access.paths[0].set_role == "c2"
    (deep,) = acl_accesses(dbs["db2"].acl, "a1", graph, ("CONNECT",))
    assert deep.chain("db2") == "a1 → b1 → c1 → d1 → CONNECT on db2"


def test_reverse_walks_agree_with_forward_ones(oracle: Oracle) -> None:
    """The group-side questions (who can use a group) answer as the member-side ones."""
    graph, _, truth = oracle
    for role, group in truth["roles"]:
        uses = group in graph.holders(role)
        assert graph.can_use(role, group) == uses, (role, group)
        assert (role in graph.user_names(group)) == (uses and role != group), (role, group)
        assert (role in graph.set_role_users(group)) == (group in graph.settable(role))
    assert graph.groups == {g for g in graph.names if graph.user_names(g)}


def _held_at_login(acl: list[AclItem], owner: str, role: str, graph: RoleGraph) -> bool:
    """What ``holds_at_login`` means, spelled out with the full path search."""
    owned = ownership_access(role, owner, graph)
    return (owned is not None and owned.usable_at_login) or any(
        a.usable_at_login
        for a in acl_accesses(acl, role, graph, ("CONNECT",), include_public=False)
    )


@pytest.mark.parametrize(
    "grants",
    [
        # Every grant inherits (PostgreSQL's default): no path search is needed.
        [grant("a", "b"), grant("b", "c"), grant("o", "x"), grant("x", "owner")],
        # One grant without INHERIT: access through it is one SET ROLE away.
        [grant("a", "b", inherit=False), grant("b", "c"), grant("o", "x"), grant("x", "owner")],
        # SET without INHERIT, and INHERIT without SET.
        [grant("a", "b", inherit=False), grant("b", "c", set_=False), grant("o", "owner")],
    ],
    ids=["all-inherit", "noinherit", "mixed"],
)
def test_holds_at_login_is_the_usable_access_of_the_acl(grants: list[Membership]) -> None:
    graph = RoleGraph(grants)
    acl = [
        AclItem(grantee=None, grantor="owner", privileges=("CONNECT",)),
        AclItem(grantee="c", grantor="owner", privileges=("CONNECT",)),
        AclItem(grantee="b", grantor="owner", privileges=("TEMPORARY",)),
    ]
    for role in ("a", "b", "c", "o", "x", "owner", "nobody"):
        expected = _held_at_login(acl, "owner", role, graph)
        assert holds_at_login(acl, "owner", role, graph, "CONNECT") == expected, role
    if graph.always_inherits:
        assert holds_at_login(acl, "owner", "a", graph, "CONNECT")
    else:
        # a reaches c only through a grant without INHERIT: not at login.
        assert not holds_at_login(acl, "owner", "a", graph, "CONNECT")
