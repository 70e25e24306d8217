"""Large objects (``lo_create``, ``GRANT SELECT ON LARGE OBJECT n TO r``) against a real
server.

A role of another app granted an app's large objects reads (or rewrites) them as surely
as a table: PGW-ISO-004 finds it on the database, names the objects, and its
remediation ends it, for thousands made alike as for one. A large object another app's
role owns is ownership, as a table's is. The server says which databases hold large
objects (pg_shdepend); only those are read for them.
"""

from __future__ import annotations

import psycopg
import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.postgres import queries as q
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from tests.rules.scenario import (
    App,
    Scenario,
    apply_remediation,
    assert_round_trip,
    build_scenario,
    family,
    finding,
    keys,
)

pytestmark = pytest.mark.versioned

# A grantee whose name holds the dollar quote a remediation's DO block would use first.
DELTA = "Delta $pgwarden$ App"
APPS = (
    App("alpha", ("alpha_db",), ("alpha_app", "alpha_reader")),
    App("beta", ("beta_db",), ("beta_app",)),
    App("gamma", ("gamma_db",), ("gamma_app",)),
    App("delta", ("delta_db",), (DELTA,)),
    App("epsilon", ("epsilon_db",), ("epsilon_app",)),
)
DB = "database/alpha_db"
NOTES = ("PGW-ISO-004", "table/alpha_db.public.notes", "role/beta_app")
MANY = range(91000, 91025)  # more than a finding lists (20)


def _large_object(oid: int, owner: str, *grants: str) -> str:
    """Create large object ``oid`` owned by ``owner``, then ``grants`` (``PRIV TO r``)."""
    granted = "".join(f" GRANT {g.replace('{}', str(oid))};" for g in grants)
    return f"SELECT lo_create({oid}); ALTER LARGE OBJECT {oid} OWNER TO {owner};{granted}"


@pytest.fixture(scope="module")
def scanned(pg_server: LocalServer) -> tuple[Scenario, Snapshot, Results]:
    scenario = build_scenario(
        pg_server,
        APPS,
        server_sql=[
            'CREATE ROLE "Gamma Team" NOLOGIN',
            'GRANT "Gamma Team" TO gamma_app',
        ],
        database_sql={
            "alpha_db": [
                # A table granted to another app's role: judged whatever befalls the rest.
                "CREATE TABLE public.notes (id int)",
                "GRANT SELECT ON public.notes TO beta_app",
                # Another app's role, directly.
                _large_object(90001, "alpha_app", "SELECT ON LARGE OBJECT {} TO beta_app"),
                # Another app's role, through a group.
                _large_object(90002, "alpha_app", 'UPDATE ON LARGE OBJECT {} TO "Gamma Team"'),
                # PUBLIC.
                _large_object(90003, "alpha_app", "SELECT ON LARGE OBJECT {} TO PUBLIC"),
                # Look-alikes: the app's own role; an object nobody else may use.
                _large_object(90004, "alpha_app", "SELECT ON LARGE OBJECT {} TO alpha_reader"),
                _large_object(90005, "alpha_app"),
                # Owned by another app's role.
                _large_object(92000, "epsilon_app"),
                # Many made alike, granted to a role named to break a DO block.
                "DO $$BEGIN FOR n IN 91000..91024 LOOP PERFORM lo_create(n); "
                "EXECUTE format('ALTER LARGE OBJECT %s OWNER TO alpha_app', n); "
                f"EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO %I', n, '{DELTA}'); "
                "END LOOP; END$$",
            ],
            "beta_db": [
                # Look-alike: the app's own large objects, nobody else's.
                _large_object(93000, "beta_app"),
            ],
        },
    )
    snapshot, results = scenario.scan()
    return scenario, snapshot, results


def test_another_apps_large_objects_are_found(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, _, results = scanned
    assert family(keys(results), "PGW-ISO-004") == {
        ("PGW-ISO-004", DB, "role/beta_app"),
        ("PGW-ISO-004", DB, "role/gamma_app"),
        ("PGW-ISO-004", DB, "PUBLIC"),
        ("PGW-ISO-004", DB, f"role/{DELTA}"),
        ("PGW-ISO-004", DB, "role/epsilon_app"),
        NOTES,
    }
    beta = finding(results, "PGW-ISO-004", DB, "role/beta_app")
    assert beta.message == (
        "in database 'alpha_db' of app 'alpha', role 'beta_app' (app 'beta') holds SELECT "
        "on large object 90001"
    )
    assert beta.evidence["large_objects"] == [90001]
    assert "REVOKE SELECT ON LARGE OBJECT 90001 FROM beta_app;" in str(beta.remediation)
    gamma = finding(results, "PGW-ISO-004", DB, "role/gamma_app")
    assert gamma.evidence["access"][0]["chain"] == (
        "gamma_app → Gamma Team → UPDATE on LARGE OBJECT 90002"
    )
    assert 'REVOKE "Gamma Team" FROM gamma_app' in str(gamma.remediation)
    public = finding(results, "PGW-ISO-004", DB, "PUBLIC")
    assert "REVOKE SELECT ON LARGE OBJECT 90003 FROM PUBLIC;" in str(public.remediation)
    owner = finding(results, "PGW-ISO-004", DB, "role/epsilon_app")
    assert owner.evidence["owns"] == {"epsilon_app": {"large object": 1}}
    assert "owns 1 large object" in owner.message
    assert "pg_largeobject_metadata" in str(owner.evidence["list_owned"])


def test_many_large_objects_are_counted_and_listed_in_part(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, _, results = scanned
    delta = finding(results, "PGW-ISO-004", DB, f"role/{DELTA}")
    assert delta.message == (
        f"in database 'alpha_db' of app 'alpha', role {DELTA!r} (app 'delta') holds SELECT "
        "on large objects 91000, 91001, 91002 (25 in all)"
    )
    assert delta.evidence["large_objects"] == list(MANY)[:20]
    assert delta.evidence["large_objects_total"] == 25
    assert "aclexplode" in str(delta.evidence["large_objects_more"])
    # Too many to name: one DO block, on one line, whose dollar quote the name cannot end.
    [block] = [line for line in str(delta.remediation).splitlines() if line.startswith("DO ")]
    assert block.startswith("DO $pgwarden1$") and block.endswith("$pgwarden1$;")


def test_with_lo_compat_privileges_on_every_large_object_is_everyones(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, _, _ = scanned
    reader = "SET ROLE alpha_reader; SELECT lo_get(90005); RESET ROLE"
    try:
        scenario.execute("postgres", ["ALTER SYSTEM SET lo_compat_privileges = on"])
        scenario.execute("postgres", ["SELECT pg_reload_conf()"])
        # What the setting does: a role granted nothing reads the object.
        scenario.execute("alpha_db", [reader])
        _, results = scenario.scan()
    finally:
        scenario.execute("postgres", ["ALTER SYSTEM RESET lo_compat_privileges"])
        scenario.execute("postgres", ["SELECT pg_reload_conf()"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        scenario.execute("alpha_db", [reader])
    public = finding(results, "PGW-ISO-004", DB, "PUBLIC")
    assert public.message == (
        "in database 'alpha_db' of app 'alpha', PUBLIC holds SELECT on large object 90003; "
        "holds SELECT, UPDATE on large objects, all 31 (lo_compat_privileges is on)"
    )
    assert public.evidence["lo_compat_privileges"] == "on"
    assert public.evidence["large_objects_total"] == 31
    assert "ALTER SYSTEM SET lo_compat_privileges = 'off';" in str(public.remediation)
    # Not in a database without large objects.
    assert ("PGW-ISO-004", "database/gamma_db", "PUBLIC") not in keys(results)


def test_large_objects_the_auditor_cannot_read_are_an_error_not_a_pass(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, _, before = scanned
    snapshot, results, alpha = scenario.scan_refused("alpha_db", "pg_largeobject_metadata")
    # The rest of the database was read, and is judged.
    assert alpha.collected and alpha.schemas and not alpha.large_objects
    assert alpha.unread == {"large_objects": "permission denied for table pg_largeobject_metadata"}
    error = finding(results, "PGW-ISO-004", DB, None)
    assert error.status == "error"
    assert error.message == (
        "in database 'alpha_db' of app 'alpha', its large objects (permission denied for table "
        "pg_largeobject_metadata) could not be read: PGW-ISO-004 judged the rest of the "
        "database, not these"
    )
    # Only the findings on large objects (granted or owned) are missing; the rest stands.
    assert family(keys(results), "PGW-ISO-004") == {NOTES}
    assert keys(results, rules=("PGW-ISO-001", "PGW-ISO-002", "PGW-ISO-003")) == keys(
        before, rules=("PGW-ISO-001", "PGW-ISO-002", "PGW-ISO-003")
    )
    assert_round_trip(scenario, snapshot, results)


def test_the_remediation_ends_the_large_object_privileges(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    scenario, _, results = scanned
    for principal in ("role/beta_app", "PUBLIC", f"role/{DELTA}", "role/epsilon_app"):
        apply_remediation(scenario, finding(results, "PGW-ISO-004", DB, principal))
    snapshot, after = scenario.scan()
    assert family(keys(after), "PGW-ISO-004") == {("PGW-ISO-004", DB, "role/gamma_app"), NOTES}
    pg = snapshot.servers[0].postgres
    assert pg is not None
    [alpha] = [d for d in pg.database_details if d.name == "alpha_db"]
    assert sum(lo.count for lo in alpha.large_objects) == 31
    assert {o.role for o in alpha.ownership if o.kind == "large object"} == {"alpha_app"}


def test_only_databases_holding_large_objects_are_read_for_them(
    scanned: tuple[Scenario, Snapshot, Results],
) -> None:
    _, snapshot, _ = scanned
    pg = snapshot.servers[0].postgres
    assert pg is not None and pg.stats is not None
    details = {d.name: d for d in pg.database_details}
    alpha = details["alpha_db"]
    assert sum(lo.count for lo in alpha.large_objects) == 31
    [many] = [lo for lo in alpha.large_objects if lo.count == 25]
    assert many.oids == tuple(MANY)[:20] and many.owner == "alpha_app"
    assert [i.grantee for i in many.acl] == [DELTA]
    assert [(lo.owner, lo.count, lo.acl) for lo in details["beta_db"].large_objects] == [
        ("beta_app", 1, ())
    ]
    assert not details["gamma_db"].large_objects
    # The server-wide reads, the session samples, each database's round trip, and one
    # statement more in alpha_db and beta_db, the databases listed.
    server_wide = 7
    per_database = len(q.DATABASE_OBJECTS) * len(details)
    assert pg.stats.statements == server_wide + pg.session_samples + per_database + 2


def test_the_snapshot_round_trips(scanned: tuple[Scenario, Snapshot, Results]) -> None:
    scenario, snapshot, results = scanned
    assert_round_trip(scenario, snapshot, results)
