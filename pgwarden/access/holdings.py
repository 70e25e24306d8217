"""What a role holds in a database in its own name: ownership, and privileges granted to it.

Not what it holds through PUBLIC or through a role it belongs to: the Microsoft Entra
rules ask who holds privileges *directly* (a person should hold them through a group)
and which app databases a group, or a role it can use, holds anything in. Every
holding comes with the statements that take it away.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pgwarden.access.remediation import (
    column_target,
    large_objects_named,
    object_target,
    revoke_large_objects,
    revoke_privileges,
    sql_comment,
)
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.context import BuiltInKey
from pgwarden.model.identifiers import quote_ident
from pgwarden.model.snapshot import AclItem, DatabaseDetail

# ALTER DEFAULT PRIVILEGES' keyword for each kind of object it covers (large objects:
# PostgreSQL 18+).
DEFAULT_ACL_OBJECTS = {
    "table": "TABLES",
    "sequence": "SEQUENCES",
    "function": "FUNCTIONS",
    "type": "TYPES",
    "schema": "SCHEMAS",
    "large object": "LARGE OBJECTS",
}


_DIRECT_HOLDERS = BuiltInKey("direct_holders")


@dataclass(frozen=True)
class Holding:
    """One thing a role holds in a database, and how to take it away.

    ``revoke`` statements run in ``database`` unless ``server_wide`` (a database's
    own ACL or owner, changed from any database).
    """

    database: str
    what: str
    revoke: tuple[str, ...]
    server_wide: bool = False


def _named(items: Iterable[AclItem], role: str) -> list[AclItem]:
    return [item for item in items if item.grantee == role]


def direct_holders(tenancy: Tenancy) -> dict[str, frozenset[str]]:
    """Every role that holds something in an app database in its own name, with those
    databases (built once per server: the Entra rules ask about each Entra role)."""
    return tenancy.context.analysis(_DIRECT_HOLDERS, tenancy, lambda: _direct_holders(tenancy))


def _direct_holders(tenancy: Tenancy) -> dict[str, frozenset[str]]:
    holders: dict[str, set[str]] = {}
    for database in tenancy.app_databases:
        names: set[str] = {tenancy.databases[database].owner}
        names.update(i.grantee for i in tenancy.databases[database].acl if i.grantee)
        detail = tenancy.detail(database)
        if detail is not None and detail.collected:
            names.update(_detail_holders(detail))
        for name in names:
            holders.setdefault(name, set()).add(database)
    return {name: frozenset(databases) for name, databases in holders.items()}


def _detail_holders(detail: DatabaseDetail) -> set[str]:
    names: set[str] = set()
    for schema in detail.schemas:
        names.add(schema.owner)
        names.update(i.grantee for i in schema.acl if i.grantee)
    names.update(g.grantee for g in detail.object_grants if g.grantee)
    names.update(o.role for o in detail.ownership)
    names.update(i.grantee for lo in detail.large_objects for i in lo.acl if i.grantee)
    for default in detail.default_privileges:
        names.update(i.grantee for i in default.acl if i.grantee)
    return names


def _successor(tenancy: Tenancy, database: str) -> str:
    """Who should own what the role owns in ``database``: the app's first role."""
    app = tenancy.app_databases.get(database)
    roles = tenancy.app_roles(app) if app else ()
    if roles:
        return quote_ident(roles[0])
    return quote_ident(tenancy.context.admin_role or tenancy.databases[database].owner)


def direct_holdings(tenancy: Tenancy, role: str, database: str) -> list[Holding]:
    """What ``role`` holds in ``database`` in its own name, each with its REVOKE."""
    db = tenancy.databases[database]
    quoted_db = quote_ident(database)
    successor = _successor(tenancy, database)
    found: list[Holding] = []
    if db.owner == role:
        found.append(
            Holding(
                database,
                f"owner of database {quoted_db}",
                (f"ALTER DATABASE {quoted_db} OWNER TO {successor};",),
                server_wide=True,
            )
        )
    for item in _named(db.acl, role):
        found.append(
            Holding(
                database,
                f"{', '.join(item.privileges)} on database {quoted_db}",
                tuple(
                    revoke_privileges(
                        item.privileges, f"DATABASE {quoted_db}", role, item.grantor, db.owner
                    )
                ),
                server_wide=True,
            )
        )
    detail = tenancy.detail(database)
    if detail is None or not detail.collected:
        return found
    for schema in detail.schemas:
        target = f"SCHEMA {quote_ident(schema.name)}"
        if schema.owner == role:
            found.append(
                Holding(
                    database,
                    f"owner of schema {quote_ident(schema.name)}",
                    (f"ALTER {target} OWNER TO {successor};",),
                )
            )
            continue
        for item in _named(schema.acl, role):
            found.append(
                Holding(
                    database,
                    f"{', '.join(item.privileges)} on schema {quote_ident(schema.name)}",
                    tuple(
                        revoke_privileges(item.privileges, target, role, item.grantor, schema.owner)
                    ),
                )
            )
    for grant in detail.object_grants:
        if grant.grantee != role:
            continue
        qualified = f"{quote_ident(grant.schema_name)}.{quote_ident(grant.name)}"
        on, revoked, what = object_target(grant), grant.privileges, f"{grant.kind} {qualified}"
        if grant.column is not None:
            _label, revoked = column_target(grant, grant.privileges)
            what = f"column {quote_ident(grant.column)} of {what}"
        found.append(
            Holding(
                database,
                f"{', '.join(grant.privileges)} on {what}",
                tuple(
                    revoke_privileges(revoked, on, role, grant.grantor or grant.owner, grant.owner)
                ),
            )
        )
    for large in detail.large_objects:
        for item in _named(large.acl, role):
            found.append(
                Holding(
                    database,
                    f"{', '.join(item.privileges)} on " + large_objects_named(large, prose=True),
                    tuple(revoke_large_objects(large, item.privileges, role, item.grantor)),
                )
            )
    for owned in detail.ownership:
        if owned.role == role:
            plural = "s" if owned.count != 1 else ""
            found.append(
                Holding(
                    database,
                    f"owner of {owned.count} {owned.kind}{plural}",
                    (
                        sql_comment("also hands over its other objects in this database:"),
                        f"REASSIGN OWNED BY {quote_ident(role)} TO {successor};",
                    ),
                )
            )
    for default in detail.default_privileges:
        for item in _named(default.acl, role):
            in_schema = quote_ident(default.schema_name) if default.schema_name else None
            where = f" IN SCHEMA {in_schema}" if in_schema else ""
            objects = DEFAULT_ACL_OBJECTS[default.object_type]
            found.append(
                Holding(
                    database,
                    f"{', '.join(item.privileges)} on future {objects.lower()} of "
                    f"{quote_ident(default.role)}"
                    + (f" in schema {in_schema}" if in_schema else ""),
                    (
                        f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(default.role)}{where} "
                        f"REVOKE {', '.join(item.privileges)} ON {objects} FROM "
                        f"{quote_ident(role)};",
                    ),
                )
            )
    return found
