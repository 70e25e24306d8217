"""PGW-ISO-004 shares what an app's databases repeat, and reports each database as itself.

Who holds an object grant, and how, is worked out once per app and grant (no server
needed): two databases of one app carrying the same grants must give the same findings
but for the database's name; a database of another app must not reuse them.
"""

from __future__ import annotations

import json
from typing import Any

from pgwarden.engine import evaluate
from pgwarden.model.config import Config
from pgwarden.model.results import Finding
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.registry import load_rules, select_rules
from tests.perf.shapes import one_server

ACL = [{"grantee": "admin", "grantor": "admin", "privileges": ["CONNECT", "CREATE", "TEMPORARY"]}]
GRANTS = [
    # A foreign role's own grant: reported per object.
    {
        "schema_name": "app",
        "name": "orders",
        "kind": "table",
        "owner": "a_owner",
        "grantee": "b_app",
        "privileges": ["SELECT"],
        "grantor": "a_owner",
    },
    # A group of no app that a foreign role belongs to: reported once per database.
    {
        "schema_name": "app",
        "name": "orders",
        "kind": "table",
        "owner": "a_owner",
        "grantee": "readers",
        "privileges": ["SELECT"],
        "grantor": "a_owner",
    },
    {
        "schema_name": "app",
        "name": "f",
        "kind": "function",
        "owner": "a_owner",
        "grantee": "readers",
        "privileges": ["EXECUTE"],
        "grantor": "a_owner",
        "arguments": "a integer",
    },
    # PUBLIC on a relation: reported as PUBLIC.
    {
        "schema_name": "app",
        "name": "lookup",
        "kind": "table",
        "owner": "a_owner",
        "grantee": None,
        "privileges": ["SELECT"],
        "grantor": "a_owner",
    },
]


def _database(name: str) -> dict[str, Any]:
    return {"name": name, "owner": "admin", "acl": ACL}


def _detail(name: str) -> dict[str, Any]:
    return {"name": name, "collected": True, "object_grants": GRANTS}


def _snapshot() -> Snapshot:
    names = ["a_one", "a_two", "b_one"]
    return one_server(
        {
            "settings": {},
            "databases": [_database(n) for n in names],
            "roles": [
                {"name": "admin", "login": True, "createrole": True},
                {"name": "auditor", "login": True},
                {"name": "a_owner", "login": False},
                {"name": "a_app", "login": True},
                {"name": "b_app", "login": True},
                {"name": "readers", "login": False},
            ],
            "memberships": [
                {"member": "b_app", "role": "readers", "grantor": "admin"},
                {"member": "a_app", "role": "readers", "grantor": "admin"},
            ],
            "sessions": [],
            "database_details": [_detail(n) for n in names],
        },
        version=(15, 8),
    )


def _config() -> Config:
    return Config.model_validate(
        {
            "server": [
                {
                    "name": "srv",
                    "admin_role": "admin",
                    "platform_roles": ["auditor"],
                    "app": [
                        {
                            "name": "a",
                            "databases": ["a_one", "a_two"],
                            "roles": ["a_owner", "a_app"],
                        },
                        {"name": "b", "databases": ["b_one"], "roles": ["b_app"]},
                    ],
                }
            ]
        }
    )


def _shown(finding: Finding, database: str) -> str:
    """A finding as JSON with its database's name made generic."""
    shown = finding.model_dump(mode="json", exclude={"fingerprint"})
    return json.dumps(shown, sort_keys=True).replace(database, "DB")


def test_databases_of_one_app_share_records_but_report_themselves() -> None:
    rules = select_rules(load_rules(), ["PGW-ISO-004"])
    results = evaluate(_snapshot(), _config(), rules)
    by_database: dict[str, list[Finding]] = {}
    for finding in results.findings:
        by_database.setdefault(finding.evidence["database"], []).append(finding)

    one = sorted(_shown(f, "a_one") for f in by_database["a_one"])
    two = sorted(_shown(f, "a_two") for f in by_database["a_two"])
    assert one == two
    assert {(f.resource, f.principal) for f in by_database["a_two"]} == {
        ("table/a_two.app.orders", "role/b_app"),
        ("table/a_two.app.lookup", "PUBLIC"),
        ("database/a_two", "role/b_app"),
    }
    # App b's own database: b_app is no foreign role there; a_app is, through readers.
    assert {(f.resource, f.principal) for f in by_database["b_one"]} == {
        ("table/b_one.app.lookup", "PUBLIC"),
        ("database/b_one", "role/a_app"),
    }
