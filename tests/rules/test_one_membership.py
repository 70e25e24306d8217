"""PGW-ISO-002, -004 and -006 report a member of one group the short way and the long way alike.

The commonest finding on a big server is a role whose one way in is its own inherited
membership in one group (a login put in an app's group). The three rules make those
findings the short way, from what the group's members share (``shortcut``); every
other finding the general way. Here a real server holds members of every kind, each
rule is run both ways over one snapshot, and the verdicts must be the same, in the
same order. The scenario (every member is foreign to ``alpha``):

* ``readers``, a group of no app, holds CONNECT on ``alpha_db``, USAGE and SELECT on
  five objects there, two tables in ``alpha_two`` and default privileges in three
  schemas; ``Odd "Team"``, another, holds CONNECT and one table;
* members by their own inherited membership (the short way): three logins of no app,
  one with a name that must be quoted and one with a line break in its name, and
  ``beta_app``, a role of another app;
* members the general way: one by two paths, one NOINHERIT (one SET ROLE away), one
  with a grant of its own besides the group's;
* ``gamma_app`` (another app's role, a foreign group) holds CONNECT and default
  privileges in ``alpha_db``, and ``alpha_app`` (the app's own role, a legitimate one)
  is given default privileges there: a login of no app belongs to each.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgwarden.access.grants import membership_access
from pgwarden.access.remediation import revoke_privileges
from pgwarden.access.tenancy import Tenancy
from pgwarden.cli.localpg import LocalServer
from pgwarden.engine import server_context
from pgwarden.model.acl import AclItem
from pgwarden.model.snapshot import ServerSnapshot, Snapshot
from pgwarden.rules.base import Rule, Verdict
from pgwarden.rules.isolation._evidence import one_membership
from pgwarden.rules.isolation.databases import CrossAppConnect
from pgwarden.rules.isolation.default_privileges import LeakyDefaultPrivileges
from pgwarden.rules.isolation.objects import ForeignObjectPrivileges
from tests.rules.scenario import App, Scenario, build_scenario

pytestmark = pytest.mark.versioned

APPS = (
    App("alpha", ("alpha_db", "alpha_two"), ("alpha_app", "alpha_migrator")),
    App("beta", ("beta_db",), ("beta_app",)),
    App("gamma", ("gamma_db",), ("gamma_app",)),
)
ODD = '"Odd ""Team"""'
# A name with a line break in it: written escaped wherever a finding shows it.
BROKEN = "stray\nline"
SHORT = {"stray_a", "stray b", BROKEN, "beta_app"}
# The general way: two paths, NOINHERIT (neither is one inherited membership), and a
# grant of its own besides the group's.
OTHER_PATHS = {"stray_two_paths", "stray_noinherit"}
GENERAL = {*OTHER_PATHS, "stray_own"}
TABLES = [f"s{n}.t{m}" for n in (1, 2) for m in (1, 2)]


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> tuple[Scenario, Snapshot]:
    scenario = build_scenario(
        pg_server,
        APPS,
        roles={"beta_app": "CONNECTION LIMIT 10"},
        server_sql=[
            "CREATE ROLE readers NOLOGIN",
            f"CREATE ROLE {ODD} NOLOGIN",
            "CREATE ROLE mid NOLOGIN",
            "CREATE ROLE stray_a LOGIN",
            'CREATE ROLE "stray b" LOGIN',
            "CREATE ROLE stray_two_paths LOGIN",
            "CREATE ROLE stray_noinherit LOGIN NOINHERIT",
            "CREATE ROLE stray_own LOGIN",
            "CREATE ROLE stray_odd LOGIN",
            "CREATE ROLE stray_foreign LOGIN",
            "CREATE ROLE stray_legit LOGIN",
            "GRANT CONNECT ON DATABASE alpha_db, alpha_two TO readers",
            'CREATE ROLE U&"stray\\000Aline" LOGIN',
            'GRANT readers TO stray_a, "stray b", U&"stray\\000Aline", beta_app, stray_noinherit, '
            "stray_own, mid",
            "GRANT mid TO stray_two_paths",
            "GRANT readers TO stray_two_paths",
            "GRANT CONNECT ON DATABASE alpha_db TO stray_own",
            f"GRANT CONNECT ON DATABASE alpha_db TO {ODD}",
            f"GRANT {ODD} TO stray_odd",
            "GRANT CONNECT ON DATABASE alpha_db TO gamma_app",
            "GRANT gamma_app TO stray_foreign",
            "GRANT alpha_app TO stray_legit",
        ],
        database_sql={
            "alpha_db": [
                *(f"CREATE SCHEMA s{n} AUTHORIZATION alpha_app" for n in (1, 2, 3)),
                *(f"CREATE TABLE {t} (id int)" for t in TABLES),
                *(f"ALTER TABLE {t} OWNER TO alpha_app" for t in TABLES),
                "GRANT USAGE ON SCHEMA s1, s2 TO readers",
                f"GRANT SELECT ON {', '.join(TABLES)} TO readers",
                f"GRANT SELECT ON s1.t1 TO {ODD}",
                "GRANT UPDATE ON s2.t2 TO stray_own",
                *(
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE alpha_app IN SCHEMA s{n} "
                    f"GRANT SELECT ON TABLES TO readers"
                    for n in (1, 2, 3)
                ),
                *(
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE alpha_app IN SCHEMA s{n} "
                    f"GRANT USAGE ON SEQUENCES TO readers"
                    for n in (1, 2, 3)
                ),
                "ALTER DEFAULT PRIVILEGES FOR ROLE alpha_migrator GRANT SELECT ON TABLES TO "
                "gamma_app",
                "ALTER DEFAULT PRIVILEGES FOR ROLE alpha_migrator GRANT SELECT ON TABLES TO "
                "alpha_app",
            ],
            "alpha_two": [
                "CREATE TABLE public.a (id int)",
                "CREATE TABLE public.b (id int)",
                "GRANT SELECT ON public.a, public.b TO readers",
            ],
        },
    )
    return scenario, scenario.collect()


def _verdicts(rule: type[Rule], scenario: Scenario, server: ServerSnapshot) -> list[Verdict]:
    context = server_context(server, scenario.config.server[0], scenario.config)
    return list(rule().check(server, context))


@pytest.mark.parametrize("rule", [CrossAppConnect, ForeignObjectPrivileges, LeakyDefaultPrivileges])
def test_the_short_way_gives_what_the_general_way_gives(
    rule: type[CrossAppConnect | ForeignObjectPrivileges | LeakyDefaultPrivileges],
    scanned: tuple[Scenario, Snapshot],
) -> None:
    scenario, snapshot = scanned
    [server] = snapshot.servers
    general = type("General", (rule,), {"shortcut": False})
    short = _verdicts(rule, scenario, server)
    assert short == _verdicts(general, scenario, server)
    # Not vacuous: both ways made findings here, for members of each kind.
    failing = {
        v.principal.removeprefix("role/") for v in short if v.principal and v.status == "fail"
    }
    assert failing >= SHORT
    assert failing & GENERAL
    tenancy = Tenancy.of(server, server_context(server, scenario.config.server[0], scenario.config))
    assert all(one_membership(tenancy.graph, role, "readers") for role in SHORT)
    assert not any(one_membership(tenancy.graph, role, "readers") for role in OTHER_PATHS)


def test_each_kind_of_group_is_reported(scanned: tuple[Scenario, Snapshot]) -> None:
    """The members of a foreign group, a legitimate one and a quoted one are found, and
    each remediation says why it cuts where it does."""
    scenario, snapshot = scanned
    [server] = snapshot.servers

    def found(rule: type[Rule]) -> dict[tuple[str, str | None], Verdict]:
        verdicts = _verdicts(rule, scenario, server)
        return {(v.resource, v.principal): v for v in verdicts if v.status == "fail"}

    connect = found(CrossAppConnect)
    alpha = "database/alpha_db"
    foreign = connect[(alpha, "role/stray_foreign")].remediation or ""
    assert "'gamma_app' must not hold this itself" in foreign
    assert "for 'stray_foreign' and every other member" in foreign
    legit = connect[("database/gamma_db", "role/stray_foreign")].remediation or ""
    assert "'gamma_app' is meant to hold it" in legit
    broken = connect[(alpha, f"role/{BROKEN}")].remediation or ""
    assert 'REVOKE readers FROM U&"stray\\000Aline"' in broken
    assert all(line.startswith(("--", "REVOKE")) for line in broken.split("\n"))
    odd = connect[(alpha, "role/stray_odd")]
    assert odd.evidence["access"][0]["grantee"] == 'Odd "Team"'
    assert "is a group of no app" in (odd.remediation or "")
    defaults = found(LeakyDefaultPrivileges)
    stray_a = defaults[(alpha, "role/stray_a")]
    assert stray_a.evidence["access_total"] == 6
    assert (stray_a.remediation or "").startswith("-- run in database alpha_db")
    assert (alpha, "role/stray_legit") in defaults
    assert (alpha, "role/stray_foreign") in defaults
    objects = found(ForeignObjectPrivileges)
    assert objects[(alpha, "role/stray_a")].evidence["access_total"] == 6
    assert len(objects[(alpha, "role/stray b")].evidence["held_on"]) == 6


def test_a_fix_of_a_roles_own_membership_is_the_general_ways(
    scanned: tuple[Scenario, Snapshot],
) -> None:
    """``Tenancy.source_fix`` and ``cut_membership`` take a quick way for an access whose
    one path is the role's own membership in the grantee; it must give what the general
    way gives. The same path twice takes the general way (two paths, one cut), so each
    access is asked both ways, in databases where its group is foreign, legitimate and
    of no app."""
    scenario, snapshot = scanned
    [server] = snapshot.servers
    tenancy = Tenancy.of(server, server_context(server, scenario.config.server[0], scenario.config))
    pairs = [
        *((member, "readers") for member in sorted(SHORT)),
        ("stray_odd", 'Odd "Team"'),
        ("stray_foreign", "gamma_app"),
        ("stray_legit", "alpha_app"),
    ]
    foreign_seen = set()
    for member, group in pairs:
        paths = one_membership(tenancy.graph, member, group)
        assert paths is not None, (member, group)
        item = AclItem(grantee=group, grantor="alpha_app", privileges=("SELECT",))
        access = membership_access(item, member, ("SELECT",), paths)
        twice = replace(access, paths=paths * 2)
        revoke = revoke_privileges(["SELECT"], "s1.t1", group, "alpha_app", "alpha_app")
        for database in ("alpha_db", "beta_db", "gamma_db"):
            foreign_seen.add(tenancy.foreign(group, database))
            assert tenancy.source_fix(access, database, revoke) == tenancy.source_fix(
                twice, database, revoke
            ), (member, group, database)
            assert tenancy.cut_membership(access, database) == tenancy.cut_membership(
                twice, database
            ), (member, group, database)
    # Groups foreign to a database and groups that may keep their grants were both asked.
    assert foreign_seen == {True, False}
