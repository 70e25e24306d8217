"""A shared server shaped like the benchmark's "unmapped logins", as a snapshot (no server).

``apps`` apps of one database each; ``logins`` login roles of no app, every other one
in an app's read-only group (which holds CONNECT on the app's database), every fourth
in a group of no app holding CONNECT on the first thirty databases; half the databases
still let PUBLIC connect. Sizes are parameters, so a test can compare two of them.
"""

from __future__ import annotations

from typing import Any

from pgwarden.engine import server_context
from pgwarden.model.config import Config
from pgwarden.model.context import ServerContext
from pgwarden.model.snapshot import ServerSnapshot, Snapshot
from pgwarden.rules.base import Rule, Verdict
from tests.calls import counted_steps

READERS_DATABASES = 30


def only_server(snapshot: Snapshot, config: Config) -> tuple[ServerSnapshot, ServerContext]:
    """The one server of ``snapshot``, and the context its rules get under ``config``."""
    server = snapshot.servers[0]
    server_config = config.server_named(server.name)
    assert server_config is not None
    return server, server_context(server, server_config, config)


def rule_steps(rule: type[Rule], snapshot: Snapshot, config: Config) -> tuple[int, list[Verdict]]:
    """The bytecode steps ``rule`` takes on the (one-server) ``snapshot`` mapped by
    ``config`` (``tests.calls.counted_steps``), and its verdicts."""
    server, context = only_server(snapshot, config)
    return counted_steps(lambda: list(rule().check(server, context)))


def one_server(postgres: dict[str, Any], version: tuple[int, int] = (16, 4)) -> Snapshot:
    """The snapshot of one server, ``srv``, with PostgreSQL ``version``'s (major, minor)
    ``postgres`` section."""
    major, minor = version
    return Snapshot.model_validate(
        {
            "tool_version": "0.1.0",
            "collected_at": "2026-11-01T10:00:00Z",
            "servers": [
                {
                    "name": "srv",
                    "postgres": {
                        "version": f"{major}.{minor}",
                        "version_num": major * 10_000 + minor,
                        "connected_as": "auditor",
                        "endpoint": {"user": "auditor"},
                        **postgres,
                    },
                }
            ],
        }
    )


def _database(app: int) -> dict[str, Any]:
    owner = f"app{app:04d}_owner"
    acl: list[dict[str, Any]] = [
        {"grantee": owner, "grantor": owner, "privileges": ["CONNECT", "CREATE", "TEMPORARY"]},
        {"grantee": f"app{app:04d}_ro", "grantor": owner, "privileges": ["CONNECT"]},
        {"grantee": "auditor", "grantor": owner, "privileges": ["CONNECT"]},
    ]
    if app % 2 == 0:
        acl.append({"grantee": None, "grantor": owner, "privileges": ["CONNECT", "TEMPORARY"]})
    if app < READERS_DATABASES:
        acl.append({"grantee": "readers", "grantor": owner, "privileges": ["CONNECT"]})
    return {"name": f"app{app:04d}_db", "owner": owner, "acl": acl}


def _definer_functions(app: int) -> list[dict[str, Any]]:
    """Three SECURITY DEFINER routines everyone may EXECUTE (PUBLIC's default): the
    admin's without a pinned path (PGW-FUNC-001), the app's service role's without one
    (PGW-FUNC-002), and the admin's with one (PGW-FUNC-003)."""
    public = [{"grantee": None, "grantor": "admin", "privileges": ["EXECUTE"]}]
    service = f"app{app:04d}_svc"
    return [
        {
            "schema_name": "app",
            "name": "purge",
            "arguments": "",
            "kind": "function",
            "owner": "admin",
            "acl": public,
        },
        {
            "schema_name": "app",
            "name": "export",
            "arguments": "n integer",
            "kind": "function",
            "owner": service,
            "acl": [{"grantee": None, "grantor": service, "privileges": ["EXECUTE"]}],
        },
        {
            "schema_name": "app",
            "name": "stats",
            "arguments": "",
            "kind": "function",
            "owner": "admin",
            "acl": public,
            "search_path": "app, pg_temp",
        },
    ]


def _foreign_servers(app: int, apps: int) -> list[dict[str, Any]]:
    """A postgres_fdw server to the next app's database on this server, that PUBLIC may
    use, with a user mapping FOR PUBLIC: every principal that can connect opens it."""
    return [
        {
            "name": "to_next",
            "wrapper": "postgres_fdw",
            "owner": "admin",
            "acl": [{"grantee": None, "grantor": "admin", "privileges": ["USAGE"]}],
            "options": {"host": "localhost", "dbname": f"app{(app + 1) % apps:04d}_db"},
            "user_mappings": [{"role": None, "options_visible": True, "remote_user": "report"}],
        }
    ]


def _tables(app: int, tables: int) -> list[dict[str, Any]]:
    """``tables`` tables of the app's owner, on each of which its read-only group holds
    SELECT: every foreign member of that group is handed all of them."""
    owner = f"app{app:04d}_owner"
    return [
        {
            "schema_name": "app",
            "name": f"t{n:04d}",
            "kind": "table",
            "owner": owner,
            "grantee": f"app{app:04d}_ro",
            "grantor": owner,
            "privileges": ["SELECT"],
        }
        for n in range(tables)
    ]


def _defaults(app: int, schemas: int) -> list[dict[str, Any]]:
    """Default privileges in ``schemas`` schemas of the app's database, each giving the
    app's read-only group SELECT on every new table its owner makes there (a schema per
    tenant): every foreign member of that group is given all of them."""
    owner = f"app{app:04d}_owner"
    return [
        {
            "role": owner,
            "schema_name": f"s{n:04d}",
            "object_type": "table",
            "acl": [{"grantee": f"app{app:04d}_ro", "grantor": owner, "privileges": ["SELECT"]}],
        }
        for n in range(schemas)
    ]


def unmapped_logins_snapshot(
    apps: int,
    logins: int,
    *,
    definers: bool = False,
    channels: bool = False,
    tables: int = 0,
    chain: int = 0,
    schemas: int = 0,
) -> Snapshot:
    """The snapshot of a server of ``apps`` apps and ``logins`` logins of no app (with
    ``definers``, three SECURITY DEFINER routines in each database; with ``channels``, a
    foreign server in each that everyone may open to the next app's database; with
    ``tables``, that many tables in each that the app's read-only group may read; with
    ``schemas``, that many schemas in each whose new tables it is given by default; with
    ``chain``, a login ``chain0000`` reaching the first app's read-only group through
    that many groups, one inside the next)."""
    roles: list[dict[str, Any]] = [
        {"name": "admin", "login": True, "createrole": True},
        {"name": "auditor", "login": True},
        {"name": "readers", "login": False},
    ]
    memberships: list[dict[str, Any]] = []
    for app in range(apps):
        prefix = f"app{app:04d}"
        roles += [
            {"name": f"{prefix}_owner", "login": False},
            {"name": f"{prefix}_ro", "login": False},
            {"name": f"{prefix}_svc", "login": True, "connection_limit": 10},
        ]
        memberships.append({"member": f"{prefix}_svc", "role": f"{prefix}_ro"})
    for n in range(logins):
        name = f"legacy_{n:05d}"
        roles.append({"name": name, "login": True})
        if n % 2 == 0:
            memberships.append({"member": name, "role": f"app{n % apps:04d}_ro"})
        if n % 4 == 0:
            memberships.append({"member": name, "role": "readers"})
    links = [f"chain{n:04d}" for n in range(chain + 1)] if chain else []
    roles += [{"name": name, "login": n == 0} for n, name in enumerate(links)]
    memberships += [
        {"member": member, "role": role}
        for member, role in zip(links, [*links[1:], "app0000_ro"], strict=False)
    ]
    databases = [_database(app) for app in range(apps)]
    return one_server(
        {
            "settings": {
                "max_connections": {"name": "max_connections", "value": "500"},
                "superuser_reserved_connections": {
                    "name": "superuser_reserved_connections",
                    "value": "3",
                },
                "reserved_connections": {"name": "reserved_connections", "value": "0"},
            },
            "databases": databases,
            "roles": roles,
            "memberships": memberships,
            "sessions": [],
            "database_details": [
                {
                    "name": db["name"],
                    "collected": True,
                    **({"definer_functions": _definer_functions(app)} if definers else {}),
                    **({"foreign_servers": _foreign_servers(app, apps)} if channels else {}),
                    **({"object_grants": _tables(app, tables)} if tables else {}),
                    **({"default_privileges": _defaults(app, schemas)} if schemas else {}),
                }
                for app, db in enumerate(databases)
            ],
        }
    )


def many_ways_in_snapshot(apps: int, logins: int, groups: int) -> Snapshot:
    """``unmapped_logins_snapshot`` where ``legacy_00001`` also belongs to ``groups``
    groups of no app, each holding CONNECT on the first app's database, USAGE on its
    schema, SELECT on one table of it and SELECT on the tables its owner will create:
    one login with that many ways into one database."""
    data = unmapped_logins_snapshot(apps, logins).model_dump(mode="json")
    pg = data["servers"][0]["postgres"]
    owner = "app0000_owner"
    detail = pg["database_details"][0]
    detail["schemas"] = [{"name": "app", "owner": owner, "acl": []}]
    detail["object_grants"] = []
    detail["default_privileges"] = []
    for n in range(groups):
        group = f"grp{n:04d}"
        pg["roles"].append({"name": group, "login": False})
        pg["memberships"].append({"member": "legacy_00001", "role": group})
        read = {"grantee": group, "grantor": owner, "privileges": ["SELECT"]}
        pg["databases"][0]["acl"].append({**read, "privileges": ["CONNECT"]})
        detail["schemas"][0]["acl"].append({**read, "privileges": ["USAGE"]})
        detail["object_grants"].append(
            {"schema_name": "app", "name": f"t{n}", "kind": "table", "owner": owner, **read}
        )
        detail["default_privileges"].append(
            {"role": owner, "schema_name": "app", "object_type": "table", "acl": [read]}
        )
    return Snapshot.model_validate(data)


def many_mappings_snapshot(
    apps: int, logins: int, groups: int, *, visible: bool = True
) -> Snapshot:
    """``unmapped_logins_snapshot`` with ``channels``, where the first database's foreign
    server (to the second app's database) may be used by ``groups`` groups of no app,
    each with a user mapping of its own, and ``app0002_svc`` belongs to every group:
    one principal of a third app with that many mappings into one database (without
    ``visible``, their options hidden from the auditor)."""
    data = unmapped_logins_snapshot(apps, logins, channels=True).model_dump(mode="json")
    pg = data["servers"][0]["postgres"]
    [server] = pg["database_details"][0]["foreign_servers"]
    server["acl"], server["user_mappings"] = [], []
    for n in range(groups):
        group = f"fdw{n:04d}"
        pg["roles"].append({"name": group, "login": False})
        pg["memberships"].append({"member": "app0002_svc", "role": group})
        server["acl"].append({"grantee": group, "grantor": "admin", "privileges": ["USAGE"]})
        server["user_mappings"].append(
            {"role": group, "options_visible": visible}
            | ({"remote_user": "report"} if visible else {})
        )
    return Snapshot.model_validate(data)


def entra_groups_snapshot(apps: int, logins: int, groups: int) -> Snapshot:
    """``unmapped_logins_snapshot`` where the group of no app (``readers``) may connect
    to every database, and ``groups`` Entra groups belong to it: each spans every app
    (PGW-ENTRA-003) through the one role they share."""
    data = unmapped_logins_snapshot(apps, logins).model_dump(mode="json")
    pg = data["servers"][0]["postgres"]
    for database in pg["databases"][READERS_DATABASES:]:
        grant = {"grantee": "readers", "grantor": database["owner"], "privileges": ["CONNECT"]}
        database["acl"].append(grant)
    for n in range(groups):
        name = f"team{n:04d}"
        object_id = f"00000000-0000-0000-0000-{n:012d}"
        pg["roles"].append(
            {"name": name, "login": True, "entra_kind": "group", "entra_object_id": object_id}
        )
        pg["memberships"].append({"member": name, "role": "readers"})
    return Snapshot.model_validate(data)


def connect_granted_snapshot(apps: int, logins: int) -> Snapshot:
    """``unmapped_logins_snapshot`` (with ``definers`` and ``channels``) where the first
    two apps' databases grant CONNECT to every login of no app, one by one (the first
    also to PUBLIC), and the second holds a table granted to each of those logins and as
    many that PUBLIC may read: database ACLs as long as the server's list of logins."""
    data = unmapped_logins_snapshot(apps, logins, definers=True, channels=True).model_dump(
        mode="json"
    )
    pg = data["servers"][0]["postgres"]
    legacy = [f"legacy_{n:05d}" for n in range(logins)]
    for database in pg["databases"][:2]:
        owner = database["owner"]
        database["acl"] += [
            {"grantee": login, "grantor": owner, "privileges": ["CONNECT"]} for login in legacy
        ]
    owner = pg["databases"][1]["owner"]
    table = {"schema_name": "app", "kind": "table", "owner": owner, "grantor": owner}
    pg["database_details"][1]["object_grants"] = [
        *({**table, "name": "t", "grantee": login, "privileges": ["SELECT"]} for login in legacy),
        *(
            {**table, "name": f"p{n}", "grantee": None, "privileges": ["SELECT"]}
            for n in range(logins)
        ),
    ]
    return Snapshot.model_validate(data)


def connect_granted_config(apps: int, logins: int) -> Config:
    """The tenancy map of ``connect_granted_snapshot``, where every other login of no app
    is one of the first app's roles: an app of as many roles as its database's ACL."""
    data = unmapped_logins_config(apps).model_dump(mode="json", exclude_none=True)
    data["server"][0]["app"][0]["roles"] += [f"legacy_{n:05d}" for n in range(1, logins, 2)]
    return Config.model_validate(data)


def tenant_databases_snapshot(
    databases: int, logins: int, *, old_public_schema: bool = False, group_execute: bool = False
) -> Snapshot:
    """One app (``saas``) of ``databases`` databases, a tenant's each, that PUBLIC may
    still connect to and create temporary objects in, and ``logins`` logins of its own
    (in its group, which holds CONNECT on every one), beside ten logins of no app. Each
    database holds a SECURITY DEFINER routine of the app's owner that everyone may
    call, one with its caller's search_path and one with a pinned one.

    ``old_public_schema``: each database also lists its ``public`` schema as PostgreSQL
    14 made it (CREATE for PUBLIC), on a server of that version. ``group_execute``: the
    routines' EXECUTE is the app's group's, not PUBLIC's, and one login of no app is in
    the group."""
    roles: list[dict[str, Any]] = [
        {"name": "admin", "login": True, "createrole": True},
        {"name": "auditor", "login": True},
        {"name": "saas_owner", "login": False},
        {"name": "saas_users", "login": False},
        *({"name": f"tenant_{n:05d}", "login": True} for n in range(logins)),
        *({"name": f"stray_{n:02d}", "login": True} for n in range(10)),
    ]
    memberships = [{"member": f"tenant_{n:05d}", "role": "saas_users"} for n in range(logins)]
    acl = [
        {"grantee": None, "grantor": "saas_owner", "privileges": ["CONNECT", "TEMPORARY"]},
        {"grantee": "saas_users", "grantor": "saas_owner", "privileges": ["CONNECT"]},
    ]
    names = [f"tenant_db_{n:04d}" for n in range(databases)]
    routine = {"schema_name": "app", "kind": "function", "owner": "saas_owner"}
    executes = "saas_users" if group_execute else None
    public = [{"grantee": executes, "grantor": "saas_owner", "privileges": ["EXECUTE"]}]
    if group_execute:
        memberships.append({"member": "stray_00", "role": "saas_users"})
    definers = [
        {**routine, "name": "audit", "arguments": "", "acl": public},
        {**routine, "name": "stats", "arguments": "", "acl": public, "search_path": "app"},
    ]
    detail: dict[str, Any] = {"collected": True, "definer_functions": definers}
    if old_public_schema:
        old_acl = [
            {"grantee": "postgres", "grantor": "postgres", "privileges": ["USAGE", "CREATE"]},
            {"grantee": None, "grantor": "postgres", "privileges": ["USAGE", "CREATE"]},
        ]
        detail["schemas"] = [{"name": "public", "owner": "postgres", "acl": old_acl}]
        roles.append({"name": "postgres", "login": True, "superuser": True})
    return one_server(
        {
            "settings": {},
            "databases": [{"name": n, "owner": "saas_owner", "acl": acl} for n in names],
            "roles": roles,
            "memberships": memberships,
            "sessions": [],
            "database_details": [{"name": n, **detail} for n in names],
        },
        (14, 11) if old_public_schema else (16, 4),
    )


def tenant_databases_config(databases: int, logins: int) -> Config:
    """The tenancy map of ``tenant_databases_snapshot``."""
    roles = ["saas_owner", "saas_users", *(f"tenant_{n:05d}" for n in range(logins))]
    app = {"name": "saas", "databases": [f"tenant_db_{n:04d}" for n in range(databases)]}
    return Config.model_validate(
        {
            "server": [
                {
                    "name": "srv",
                    "admin_role": "admin",
                    "platform_roles": ["auditor"],
                    "app": [{**app, "roles": roles}],
                }
            ]
        }
    )


def unmapped_logins_config(apps: int) -> Config:
    """The tenancy map of ``unmapped_logins_snapshot``: each app, its database and roles."""
    return Config.model_validate(
        {
            "server": [
                {
                    "name": "srv",
                    "admin_role": "admin",
                    "platform_roles": ["auditor"],
                    "app": [
                        {
                            "name": f"app{app:04d}",
                            "databases": [f"app{app:04d}_db"],
                            "roles": [f"app{app:04d}_svc", f"app{app:04d}_ro"],
                        }
                        for app in range(apps)
                    ],
                }
            ]
        }
    )
