"""PGW-ISO-003: PUBLIC may create objects in an app database or its schemas (CVE-2018-1058)."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.privileges import acl_text
from pgwarden.access.remediation import (
    capped_statements,
    in_database,
    revoke_privileges,
    sql_comment,
)
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import put_capped, put_capped_mapping
from pgwarden.model.frameworks.catalogue import CIS_POSTGRESQL_16, CIS_POSTGRESQL_17, NIST_800_53
from pgwarden.model.snapshot import AclItem, Database, ServerSnapshot
from pgwarden.rules.base import (
    Control,
    Rule,
    Section,
    ServerContext,
    Verdict,
    quote_ident,
    quote_literal,
)
from pgwarden.rules.isolation._evidence import (
    database_passed,
    datacl_query,
    inspected,
    remediation_script,
    verify_database_privilege,
)


class PublicCreateInSchema(Rule):
    """PUBLIC can create objects in a schema of an app database.

    CREATE on a schema lets any role that can connect plant tables, views and —
    above all — functions and operators that shadow the ones the app calls through
    its search_path (CVE-2018-1058). PostgreSQL 15 stopped granting it on ``public``
    for new databases, but a database created before 15, or from a template that was,
    keeps the old ACL; only CREATE is checked, USAGE for PUBLIC is harmless. CREATE
    on the database itself (new schemas) for PUBLIC is reported here too.

    Violation: An app database schema whose ACL gives CREATE to PUBLIC, or an app
    database whose ACL gives CREATE to PUBLIC.

    Fix: In that database, REVOKE CREATE ON SCHEMA <schema> FROM PUBLIC (as the
    schema owner or the grantor), and GRANT CREATE only to the app's own migration
    role.
    """

    id = "PGW-ISO-003"
    severity = "medium"
    requires = (Section.TENANCY_MAP, Section.POSTGRES)
    # CIS PostgreSQL: "Ensure the public schema is protected".
    controls = (
        Control(CIS_POSTGRESQL_16, "4.8"),
        Control(CIS_POSTGRESQL_17, "4.10"),
        Control(NIST_800_53, "AC-6"),
    )

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        version = tenancy.version_num
        lacking_by: dict[tuple[str, frozenset[str]], list[str]] = {}
        for database, app, detail in inspected(tenancy, self.id):
            db = tenancy.databases[database]
            public_db = next((i for i in db.acl if i.is_public and "CREATE" in i.privileges), None)
            open_schemas = (
                []
                if isinstance(detail, Verdict)
                else [
                    s
                    for s in detail.schemas
                    if any(i.is_public and "CREATE" in i.privileges for i in s.acl)
                ]
            )
            clean = public_db is None and not open_schemas
            if context.include_passed and clean and not isinstance(detail, Verdict):
                checked: dict[str, object] = {}
                put_capped_mapping(
                    checked,
                    "schemas",
                    ((s.name, [acl_text(i) for i in s.acl]) for s in detail.schemas),
                    len(detail.schemas),
                    f"SELECT nspname, nspacl FROM pg_namespace;  -- in {database!r}",
                )
                yield database_passed(
                    db,
                    app,
                    f"PUBLIC can create nothing in database {database!r} of app {app!r}, "
                    "nor in any of its schemas",
                    **checked,
                )
            if public_db is not None:
                yield Verdict(
                    resource=f"database/{database}",
                    principal="PUBLIC",
                    app=app,
                    message=f"PUBLIC can create schemas in database {database!r} of app {app!r}",
                    evidence=_database_evidence(db, public_db),
                    remediation=remediation_script(
                        revoke_privileges(
                            ["CREATE"],
                            f"DATABASE {quote_ident(database)}",
                            None,
                            public_db.grantor,
                            db.owner,
                        )
                    ),
                )
            if isinstance(detail, Verdict):
                yield detail
                continue
            for schema in detail.schemas:
                item = next(
                    (i for i in schema.acl if i.is_public and "CREATE" in i.privileges), None
                )
                if item is None:
                    continue
                evidence: dict[str, object] = {
                    "database": database,
                    "schema": schema.name,
                    "owner": schema.owner,
                    "acl_item": acl_text(item),
                }
                put_capped(
                    evidence,
                    "nspacl",
                    (acl_text(i) for i in schema.acl),
                    len(schema.acl),
                    f"SELECT nspacl FROM pg_namespace WHERE nspname = {quote_literal(schema.name)};"
                    f"  -- in {database!r}",
                )
                evidence["verify"] = (
                    f"SELECT has_schema_privilege('public', {quote_literal(schema.name)}, "
                    f"'CREATE');  -- in {database!r}"
                )
                if schema.name == "public":
                    evidence["note"] = _public_schema_note(version, schema.owner)
                lacking = _lacking_create(tenancy, app, schema.acl, lacking_by)
                keep = capped_statements(
                    (
                        sql_comment(
                            f"if {role!r} creates objects here: GRANT CREATE ON SCHEMA "
                            f"{quote_ident(schema.name)} TO {quote_ident(role)};"
                        )
                        for role in lacking
                    ),
                    f"the same for app {app!r}'s other roles",
                    total=len(lacking),
                )
                yield Verdict(
                    resource=f"schema/{database}.{schema.name}",
                    principal="PUBLIC",
                    app=app,
                    message=f"PUBLIC can create objects in schema {schema.name!r} of database "
                    f"{database!r} (app {app!r})",
                    evidence=evidence,
                    remediation=remediation_script(
                        [in_database(database)],
                        revoke_privileges(
                            ["CREATE"],
                            f"SCHEMA {quote_ident(schema.name)}",
                            None,
                            item.grantor,
                            schema.owner,
                        ),
                        keep,
                    ),
                )


def _lacking_create(
    tenancy: Tenancy,
    app: str,
    acl: Iterable[AclItem],
    known: dict[tuple[str, frozenset[str]], list[str]],
) -> list[str]:
    """The roles of ``app`` that may create in a schema of ``acl`` only through PUBLIC,
    in map order.

    Only a role that is, or can use, a grantee of CREATE holds it otherwise, so schemas
    whose ACLs give CREATE to the same roles share the answer (``known``, by app and
    grantees): every public schema of an app of a thousand databases made before
    PostgreSQL 15 asks it once, not once per schema for each of the app's roles.
    """
    grantees = frozenset(
        item.grantee for item in acl if item.grantee is not None and "CREATE" in item.privileges
    )
    key = (app, grantees)
    found = known.get(key)
    if found is None:
        graph = tenancy.graph
        found = known[key] = [
            role
            for role in tenancy.app_roles(app)
            if not any(graph.can_use(role, grantee) for grantee in grantees)
        ]
    return found


def _database_evidence(db: Database, item: AclItem) -> dict[str, object]:
    """What shows PUBLIC's CREATE on a database: its ACL item and the ACL it is in."""
    evidence: dict[str, object] = {"database": db.name, "acl_item": acl_text(item)}
    put_capped(
        evidence, "datacl", (acl_text(i) for i in db.acl), len(db.acl), datacl_query(db.name)
    )
    evidence["verify"] = verify_database_privilege(None, db.name, "CREATE")
    return evidence


def _public_schema_note(version: int, owner: str) -> str:
    if version < 150000:
        return "before PostgreSQL 15 every new database's public schema gives CREATE to PUBLIC"
    if owner != "pg_database_owner":
        return (
            f"the schema is owned by {owner!r}, not pg_database_owner: it predates "
            "PostgreSQL 15 (an upgraded database, or one copied from an old template) and "
            "kept the old ACL"
        )
    return (
        "PostgreSQL 15+ creates public with USAGE only for PUBLIC: CREATE was granted "
        "explicitly (or the template database had it)"
    )
