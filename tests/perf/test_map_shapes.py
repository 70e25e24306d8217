"""Rules that read the tenancy map, the sampled sessions and the apps' secrets: their
work follows apps plus sessions (or one app's roles plus its routines), never their
product, and a finding stays a few kilobytes whatever one app lists.

Work is counted in bytecode steps at two sizes (``tests.calls.counted_steps``: a scan
of every session for each role is a loop inside one comprehension, which makes no
calls), never timed: doubling both dimensions doubles work that follows their sum and
quadruples work that follows their product.
"""

from __future__ import annotations

import uuid
from typing import Any

from pgwarden.engine import evaluate
from pgwarden.model.config import Config
from pgwarden.model.evidence import MAX_LISTED, MAX_WAYS_SHOWN
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.base import Rule
from pgwarden.rules.entra_roles import PasswordLoginBesideEntraIdentity
from pgwarden.rules.functions.pinned import DefinerCalledAcrossApps
from pgwarden.rules.keyvault.app_secrets import AppSecretPointsElsewhere
from pgwarden.rules.registry import load_rules, select_rules
from tests.perf.shapes import rule_steps, unmapped_logins_config, unmapped_logins_snapshot

MAX_FINDING_BYTES = 4_096
HOST = "srv.postgres.database.azure.com"


def _quiet(apps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A server of ``apps`` apps whose databases were read and hold nothing to report,
    and its tenancy map, as dicts to shape further."""
    data = unmapped_logins_snapshot(apps, 0).model_dump(mode="json")
    for detail in data["servers"][0]["postgres"]["database_details"]:
        detail.update(definer_functions=[], foreign_servers=[], extensions=[])
    config = unmapped_logins_config(apps).model_dump(mode="json", exclude={"path", "locations"})
    return data, config


def _steps(rule: type[Rule], data: dict[str, Any], config: dict[str, Any]) -> int:
    snapshot, cfg = Snapshot.model_validate(data), Config.model_validate(config)
    steps, verdicts = rule_steps(rule, snapshot, cfg)
    assert verdicts
    return steps


def _with_identities_and_sessions(apps: int, sessions: int) -> tuple[dict[str, Any], ...]:
    """Every app given an Entra identity (its password role is PGW-ENTRA-001's), and
    ``sessions`` client sessions of the apps' roles."""
    data, config = _quiet(apps)
    data["servers"][0]["postgres"]["sessions"] = [
        {
            "pid": 1000 + n,
            "database": f"app{n % apps:04d}_db",
            "user": f"app{n % apps:04d}_svc",
            "application_name": "service",
        }
        for n in range(sessions)
    ]
    for k, app in enumerate(config["server"][0]["app"]):
        app["identities"] = [str(uuid.UUID(int=k + 1))]
    return data, config


def test_entra_logins_cost_apps_plus_sessions_not_their_product() -> None:
    # Each password role once asked every session whether it was its own.
    small = _steps(PasswordLoginBesideEntraIdentity, *_with_identities_and_sessions(100, 1_000))
    large = _steps(PasswordLoginBesideEntraIdentity, *_with_identities_and_sessions(200, 2_000))
    assert large / small < 2.6, (small, large)


def _one_big_app(roles: int) -> tuple[dict[str, Any], ...]:
    """An app listing ``roles`` login roles, whose database has five routines of the
    admin, pinned, that everyone may EXECUTE (PGW-FUNC-003 keeps them for the app)."""
    data, config = _quiet(4)
    pg = data["servers"][0]["postgres"]
    app = config["server"][0]["app"][0]
    for n in range(roles):
        name = f"app0000_u{n:05d}"
        pg["roles"].append({"name": name, "login": True, "connection_limit": 5})
        pg["memberships"].append({"member": name, "role": "app0000_ro"})
        app["roles"].append(name)
    pg["database_details"][0]["definer_functions"] = [
        {
            "schema_name": "app",
            "name": f"f{n}",
            "arguments": "",
            "kind": "function",
            "owner": "admin",
            "acl": [{"grantee": None, "grantor": "admin", "privileges": ["EXECUTE"]}],
            "search_path": "app, pg_temp",
        }
        for n in range(5)
    ]
    return data, config


def test_one_app_of_many_roles_costs_its_roles_not_their_square() -> None:
    # Each routine asks, for each of the app's roles, whether it may call it. (Whether
    # a role is one of the app's own was once a search of a tuple of them: work inside
    # C, which no counter here sees; ``Connecting`` now asks a set.)
    small = _steps(DefinerCalledAcrossApps, *_one_big_app(400))
    large = _steps(DefinerCalledAcrossApps, *_one_big_app(800))
    assert large / small < 2.6, (small, large)


def test_the_grants_that_keep_an_apps_callers_are_capped() -> None:
    data, config = _one_big_app(200)
    results = evaluate(
        Snapshot.model_validate(data),
        Config.model_validate(config),
        select_rules(load_rules(), ("PGW-FUNC-003",)),
    )
    assert results.findings
    for finding in results.findings:
        assert len(finding.model_dump_json(exclude_none=True)) <= MAX_FINDING_BYTES
        script = (finding.remediation or "").splitlines()
        grants = [line for line in script if line.startswith("GRANT EXECUTE")]
        assert len(grants) == MAX_LISTED
        assert any("more like these" in line for line in script)
        assert any(
            line.startswith("REVOKE EXECUTE ON") and line.endswith("FROM PUBLIC;")
            for line in script
        )


def _with_app_secrets(apps: int) -> tuple[dict[str, Any], ...]:
    """Every app's DSN secret read from Key Vault, each pointing at this server, one in
    three at another app's database (PGW-KV-003's)."""
    data, config = _quiet(apps)
    server = data["servers"][0]
    server["postgres"]["endpoint"]["host"] = HOST
    secrets = []
    for k, app in enumerate(config["server"][0]["app"]):
        vault, name = f"vault{k % 10}", f"dsn-{k}"
        app["secret"] = f"keyvault:{vault}/{name}"
        secrets.append(
            {
                "app": app["name"],
                "reference": app["secret"],
                "vault": vault,
                "name": name,
                "found": True,
                "secret": {
                    "vault": vault,
                    "name": name,
                    "connection_string": True,
                    "endpoint": {
                        "user": f"app{k:04d}_svc",
                        "host": HOST,
                        "database": f"app{(k + k % 3) % apps:04d}_db",
                    },
                },
            }
        )
    server["azure"] = {"cloud": "AzureCloud", "app_secrets": secrets}
    return data, config


def test_app_secrets_cost_the_apps_not_their_square() -> None:
    # Each secret's app was looked up by walking the whole list of apps.
    small = _steps(AppSecretPointsElsewhere, *_with_app_secrets(300))
    large = _steps(AppSecretPointsElsewhere, *_with_app_secrets(600))
    assert large / small < 2.6, (small, large)


def test_an_app_with_thousands_of_identities_has_a_finding_of_a_few_kilobytes() -> None:
    data, config = _with_identities_and_sessions(2, 10)
    config["server"][0]["app"][0]["identities"] = [
        str(uuid.UUID(int=n + 100)) for n in range(1_000)
    ]
    results = evaluate(
        Snapshot.model_validate(data),
        Config.model_validate(config),
        select_rules(load_rules(), ("PGW-ENTRA-001",)),
    )
    finding = next(f for f in results.findings if f.app == "app0000")
    assert len(finding.model_dump_json(exclude_none=True)) <= MAX_FINDING_BYTES
    assert finding.evidence["identities_total"] == 1_000
    assert len(finding.evidence["identities"]) == MAX_LISTED
    assert "and 997 more" in finding.message
    script = finding.remediation or ""
    assert script.count("pgaadauth_create_principal_with_oid") == MAX_WAYS_SHOWN
    assert f"{1_000 - MAX_WAYS_SHOWN} more like these" in script
