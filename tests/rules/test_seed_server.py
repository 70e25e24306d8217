"""The seed's shared server: every planted mistake is found, nothing configured right is.

``build_seed_server`` plants the mistakes such servers really have; the scan runs as
the non-superuser ``pg_monitor`` auditor with the demo's tenancy map, while an
application is logged in as the admin and the admin works from psql.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from pgwarden.cli.demo import (
    ADMIN,
    AUDITOR,
    DEMO_CONFIG,
    DEMO_DSN_VARIABLE,
    SeedServer,
    app_sessions,
)
from pgwarden.collect.run import collect
from pgwarden.engine import evaluate
from pgwarden.model.config import parse_config
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.registry import load_rules
from tests.rules.scenario import (
    OWN_RULES,
    PG16,
    Key,
    comparable,
    finding,
    granted_by,
    keys,
    old_public_schemas,
    version_of,
)

pytestmark = pytest.mark.versioned

RULES_HERE = (*OWN_RULES, "PGW-MAP-001", "PGW-MAP-002")

# Each planted mistake, and the finding that must report it.
PLANTED: dict[str, Key] = {
    "PUBLIC CONNECT left on zep": ("PGW-ISO-001", "database/zep", "PUBLIC"),
    "PUBLIC CONNECT left on temporal": ("PGW-ISO-001", "database/temporal", "PUBLIC"),
    "PUBLIC CONNECT left on temporal_visibility": (
        "PGW-ISO-001",
        "database/temporal_visibility",
        "PUBLIC",
    ),
    "zep_app granted CONNECT on ctxEco": ("PGW-ISO-002", "database/ctxEco", "role/zep_app"),
    "temporal_app in reporting, which may CONNECT to secairadar": (
        "PGW-ISO-002",
        "database/secairadar",
        "role/temporal_app",
    ),
    "temporal_app member of ctxeco_app": ("PGW-ROLE-002", "role/ctxeco_app", "role/temporal_app"),
    "zep_app CREATEROLE": ("PGW-ROLE-001", "role/zep_app", "role/zep_app"),
    "temporal_app in pg_read_all_data": (
        "PGW-ROLE-002",
        "role/pg_read_all_data",
        "role/temporal_app",
    ),
    "radar.findings granted to ctxeco_app": (
        "PGW-ISO-004",
        "table/secairadar.radar.findings",
        "role/ctxeco_app",
    ),
    "CREATE on zep's public for PUBLIC": ("PGW-ISO-003", "schema/zep.public", "PUBLIC"),
    "default privileges in temporal grant SELECT to PUBLIC": (
        "PGW-ISO-006",
        "schema/temporal.public",
        "PUBLIC",
    ),
    "login legacy_etl that no app owns": ("PGW-ROLE-004", "role/legacy_etl", "role/legacy_etl"),
    "temporal_app without connection limit": (
        "PGW-ROLE-003",
        "role/temporal_app",
        "role/temporal_app",
    ),
    "password_encryption = md5": ("PGW-AUTH-001", "setting/password_encryption", None),
}

# What those mistakes imply beyond themselves, each a true effective-access fact.
CONSEQUENCES: set[Key] = {
    # PUBLIC's TEMPORARY goes with PUBLIC's CONNECT on the untouched databases.
    ("PGW-ISO-005", "database/zep", "PUBLIC"),
    ("PGW-ISO-005", "database/temporal", "PUBLIC"),
    ("PGW-ISO-005", "database/temporal_visibility", "PUBLIC"),
    # temporal_app uses everything ctxeco_app holds: CONNECT on ctxEco; CREATE in its
    # public schema and ownership of its table (one finding for ctxEco); SELECT on
    # radar.findings (one finding for secairadar).
    ("PGW-ISO-002", "database/ctxEco", "role/temporal_app"),
    ("PGW-ISO-004", "database/ctxEco", "role/temporal_app"),
    ("PGW-ISO-004", "database/secairadar", "role/temporal_app"),
}


@pytest.fixture(scope="module")
def seed_scan(seed_server: SeedServer) -> Iterator[tuple[Snapshot, Results, int]]:
    config = parse_config(DEMO_CONFIG, "pgwarden.toml")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(DEMO_DSN_VARIABLE, seed_server.dsn(AUDITOR))
        with app_sessions(seed_server):
            with psycopg.connect(seed_server.server.dsn()) as conn:
                row = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'ctxeco-api'"
                ).fetchone()
            assert row is not None
            snapshot = collect(config)
    yield snapshot, evaluate(snapshot, config, load_rules()), int(row[0])


def test_every_planted_mistake_is_reported(seed_scan: tuple[Snapshot, Results, int]) -> None:
    _, results, _ = seed_scan
    found = keys(results, rules=RULES_HERE)
    missing = {name: key for name, key in PLANTED.items() if key not in found}
    assert not missing


def test_exactly_these_findings(seed_scan: tuple[Snapshot, Results, int]) -> None:
    snapshot, results, pid = seed_scan
    admin_session = ("PGW-ADM-001", f"session/{pid}", f"role/{ADMIN}")
    # Before PostgreSQL 15 the other databases' public schemas give PUBLIC CREATE too.
    old_schemas = old_public_schemas(
        version_of(snapshot), ("ctxEco", "temporal", "temporal_visibility", "secairadar")
    )
    expected = {*PLANTED.values(), *CONSEQUENCES, admin_session, *old_schemas}
    assert keys(results, rules=RULES_HERE) == expected
    assert not keys(results, status="error", rules=RULES_HERE)


def test_nothing_configured_right_is_reported(seed_scan: tuple[Snapshot, Results, int]) -> None:
    _, results, _ = seed_scan
    mine = [f for f in results.findings if f.rule_id in RULES_HERE]
    # secai-radar's own role, the auditor and the admin as a principal of anything but
    # its application session; the admin's psql session; secai-radar's own session.
    assert not [f for f in mine if f.principal == "role/secairadar_app"]
    assert not [f for f in mine if f.principal == f"role/{AUDITOR}"]
    assert [f.rule_id for f in mine if f.principal == f"role/{ADMIN}"] == ["PGW-ADM-001"]
    (session,) = [f for f in mine if f.rule_id == "PGW-ADM-001"]
    assert session.evidence["application_name"] == "ctxeco-api"
    assert session.evidence["database"] == "ctxEco"
    assert session.evidence["client_addr"] == "127.0.0.1"
    assert session.evidence["backend_start"]
    # secairadar is reached only by temporal_app (through reporting and ctxeco_app).
    assert {(f.rule_id, f.principal) for f in mine if f.resource == "database/secairadar"} == {
        ("PGW-ISO-002", "role/temporal_app"),
        ("PGW-ISO-004", "role/temporal_app"),
    }


def test_evidence_and_fixes_of_the_seed(seed_scan: tuple[Snapshot, Results, int]) -> None:
    snapshot, results, _ = seed_scan
    by = granted_by(version_of(snapshot))
    via_ctxeco = finding(results, "PGW-ISO-002", "database/ctxEco", "role/temporal_app")
    assert via_ctxeco.evidence["access"][0]["chain"] == (
        'temporal_app → ctxeco_app → CONNECT on "ctxEco"'
    )
    assert f"REVOKE ctxeco_app FROM temporal_app{by};" in str(via_ctxeco.remediation).splitlines()
    via_group = finding(results, "PGW-ISO-002", "database/secairadar", "role/temporal_app")
    assert f"REVOKE reporting FROM temporal_app{by};" in str(via_group.remediation).splitlines()
    direct = finding(results, "PGW-ISO-002", "database/ctxEco", "role/zep_app")
    assert 'REVOKE CONNECT ON DATABASE "ctxEco" FROM zep_app;' in str(direct.remediation)
    through = finding(results, "PGW-ISO-004", "database/ctxEco", "role/temporal_app")
    assert through.message == (
        "in database 'ctxEco' of app 'ctxeco', role 'temporal_app' (app 'temporal') can act as "
        "'ctxeco_app', the owner of 1 table; holds CREATE on SCHEMA \"public\" through "
        "'ctxeco_app'"
    )
    assert [ln for ln in str(through.remediation).splitlines() if not ln.startswith("--")] == [
        f"REVOKE ctxeco_app FROM temporal_app{by};"
    ]
    read_all = finding(results, "PGW-ROLE-002", "role/pg_read_all_data", "role/temporal_app")
    assert results.findings[0].severity == "critical"
    assert read_all.severity == "critical" and "pg_authid" in read_all.message
    assert finding(results, "PGW-ISO-001", "database/zep", "PUBLIC").remediation == (
        "-- first keep access for the roles that need it\n"
        "GRANT CONNECT ON DATABASE zep TO zep_app;\n"
        f"GRANT CONNECT ON DATABASE zep TO {AUDITOR};\n"
        "REVOKE CONNECT ON DATABASE zep FROM PUBLIC;"
    )


def test_snapshot_round_trip_agrees(seed_scan: tuple[Snapshot, Results, int]) -> None:
    snapshot, results, _ = seed_scan
    again = Snapshot.model_validate_json(snapshot.model_dump_json())
    config = parse_config(DEMO_CONFIG, "pgwarden.toml")
    assert comparable(evaluate(again, config, load_rules())) == comparable(results)


def test_the_auditor_saw_everything_it_needed(seed_scan: tuple[Snapshot, Results, int]) -> None:
    snapshot, _, _ = seed_scan
    pg = snapshot.servers[0].postgres
    assert pg is not None
    assert pg.gaps == ()
    # reserved_connections exists from PostgreSQL 16 on: read there, no gap for it before.
    assert ("reserved_connections" in pg.settings) == (pg.version_num >= PG16)
    roles = {role.name: role for role in pg.roles}
    assert roles["postgres"].bootstrap_superuser
    assert not any(r.bootstrap_superuser for name, r in roles.items() if name != "postgres")
    radar = pg.detail("secairadar")
    assert radar is not None
    (grant,) = radar.object_grants
    assert (grant.grantee, grant.grantor, grant.owner) == (
        "ctxeco_app",
        "secairadar_app",
        "secairadar_app",
    )
