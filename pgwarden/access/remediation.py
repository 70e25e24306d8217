"""Remediation SQL: the statements that remove an access, and the queries that confirm it.

The remediation helpers here turn an access into the statement that removes it at
its source: the ACL item (revoked as its grantor) or the membership grant (revoked
``GRANTED BY`` its grantor on PG16+, where grants are tracked per grantor).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

from pgwarden.access.graph import PG16, RoleGraph
from pgwarden.access.privileges import sort_privileges
from pgwarden.model.evidence import MAX_LISTED, first
from pgwarden.model.identifiers import printable, quote_ident, quote_literal, regrole
from pgwarden.model.snapshot import LargeObjects, ObjectGrant


def object_target(grant: ObjectGrant, schemas: dict[str, str] | None = None) -> str:
    """What a REVOKE of ``grant`` names: ``TABLE "s"."t"`` (a view, a foreign table),
    ``SEQUENCE ...`` or ``ROUTINE ...(arguments)``; for a column privilege, its table.
    ``schemas`` keeps each schema's quoted name for the next object in it."""
    schema = grant.schema_name
    if schemas is None:
        quoted = quote_ident(schema)
    else:
        quoted = schemas.get(schema) or schemas.setdefault(schema, quote_ident(schema))
    qualified = f"{quoted}.{quote_ident(grant.name)}"
    if grant.arguments is not None:
        return f"ROUTINE {qualified}({grant.arguments})"
    return f"{'SEQUENCE' if grant.kind == 'sequence' else 'TABLE'} {qualified}"


def column_target(grant: ObjectGrant, privileges: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """A column privilege's name for people (``COLUMN "s"."t"."c"``) and its privileges
    as REVOKE names them (``SELECT ("c")``)."""
    column = quote_ident(grant.column or "")
    qualified = f"{quote_ident(grant.schema_name)}.{quote_ident(grant.name)}"
    return f"COLUMN {qualified}.{column}", tuple(f"{p} ({column})" for p in privileges)


def large_objects_named(objects: LargeObjects, *, prose: bool = False) -> str:
    """Large objects as people read them: ``LARGE OBJECT 16401``, or for several
    ``LARGE OBJECTS 16401, 16402, 16403 (40 in all)`` (in ``prose``, lower case)."""
    word = "large object" if prose else "LARGE OBJECT"
    if objects.count == 1:
        return f"{word} {objects.oids[0]}"
    listed = ", ".join(str(oid) for oid in objects.oids[:3])
    more = f" ({objects.count:,} in all)" if objects.count > 3 else ""
    return f"{word}{'s' if prose else 'S'} {listed}{more}"


def acl_grantee(grantee: str | None) -> str:
    """SQL for ``grantee``'s OID as ``aclexplode`` gives it: 0 for PUBLIC."""
    return "0" if grantee is None else regrole(grantee)


def revoke_large_objects(
    objects: LargeObjects, privileges: Iterable[str], grantee: str | None, grantor: str | None
) -> list[str]:
    """REVOKE ``privileges`` on ``objects`` from ``grantee`` (None: PUBLIC), as its grantor.

    One REVOKE names them when the snapshot lists them all; beyond that (a database
    may hold millions alike) a DO block, on one line, revokes from each large object of
    the owner whose ACL names the grantee by that grantor.
    """
    revoked = ", ".join(sort_privileges(privileges))
    target = "PUBLIC" if grantee is None else quote_ident(grantee)
    if objects.count <= len(objects.oids):
        listed = ", ".join(str(oid) for oid in objects.oids)
        return as_grantor(
            f"REVOKE {revoked} ON LARGE OBJECT {listed} FROM {target};", grantor, objects.owner
        )
    body = (
        "DECLARE o oid; BEGIN FOR o IN SELECT m.oid FROM pg_largeobject_metadata AS m "
        f"WHERE m.lomowner = {regrole(objects.owner)} "
        "AND EXISTS (SELECT FROM aclexplode(m.lomacl) AS i "
        f"WHERE i.grantee = {acl_grantee(grantee)} "
        f"AND i.grantor = {regrole(grantor or objects.owner)}) "
        f"LOOP EXECUTE {quote_literal(f'REVOKE {revoked} ON LARGE OBJECT ')} || o || "
        f"{quote_literal(f' FROM {target}')}; END LOOP; END"
    )
    # Dollar quotes that the body (role names among it) cannot end.
    tag, n = "$pgwarden$", 0
    while tag in body:
        n += 1
        tag = f"$pgwarden{n}$"
    return as_grantor(f"DO {tag}{body}{tag};", grantor, objects.owner)


def revoke_membership(graph: RoleGraph, member: str, role: str, version_num: int) -> list[str]:
    """Statements that end ``member``'s use of ``role``: one REVOKE per access grant.

    From PostgreSQL 16 a membership is recorded per grantor and a plain REVOKE only
    removes the grant the current role made, so each one is revoked ``GRANTED BY``
    its grantor. Before 16 there is one grant per pair and the grantor is ignored.
    """
    grants = graph.access_grants(member, role) or graph.grants(member, role)
    head = f"REVOKE {quote_ident(role)} FROM {quote_ident(member)}"
    if version_num < PG16:
        return [f"{head};"]
    statements = [
        f"{head} GRANTED BY {quote_ident(g.grantor)};" if g.grantor else f"{head};" for g in grants
    ]
    return list(dict.fromkeys(statements)) or [f"{head};"]


def revoke_privileges(
    privileges: Iterable[str],
    on: str,
    grantee: str | None,
    grantor: str | None,
    owner: str | None,
) -> list[str]:
    """REVOKE ``privileges`` ON ``on`` (already quoted, e.g. ``DATABASE "x"``) FROM grantee.

    A REVOKE only removes the ACL item its issuer granted. When the owner (or a
    superuser, or a member of the owner, all of whom act as the owner) granted it, a
    plain REVOKE works; when another role granted it (holding the grant option), the
    REVOKE must be issued as that role.
    """
    target = "PUBLIC" if grantee is None else quote_ident(grantee)
    statement = f"REVOKE {', '.join(sort_privileges(privileges))} ON {on} FROM {target};"
    return as_grantor(statement, grantor, owner)


def as_grantor(statement: str, grantor: str | None, owner: str | None) -> list[str]:
    """``statement`` (a REVOKE), issued as ``grantor`` when not the owner's: a REVOKE only
    removes the ACL items its issuer granted."""
    if grantor is None or owner is None or grantor == owner:
        return [statement]
    return [
        sql_comment(
            f"granted by {grantor!r}, not by the owner {owner!r}: revoke it as the grantor"
        ),
        f"SET ROLE {quote_ident(grantor)};",
        statement,
        "RESET ROLE;",
    ]


def capped_statements(
    statements: Iterable[str], rest: str, limit: int = MAX_LISTED, *, total: int | None = None
) -> list[str]:
    """The first ``limit`` (``MAX_LISTED``) statements, then one comment on what the
    rest would do.

    A remediation script is read and run by a person: on a server of thousands of
    roles the first statements and the rule that makes the others show what to do,
    where a page of near-identical lines would hide it. With ``total`` (how many
    ``statements`` there are), only the first ``limit`` are read: a generator of them
    writes no more than are shown.
    """
    if total is None:
        statements = list(statements)
        total = len(statements)
    shown = first(statements, limit)
    if total <= limit:
        return shown
    return [*shown, sql_comment(f"… and {total - limit} more like these: {rest}")]


# Blocks (a comment and the statements it explains) a remediation script spells out
# when a principal has many ways in: each names a chain, and a few show the way.
MAX_BLOCKS = 5


def capped_blocks(blocks: Iterable[list[str]], total: int, rest: str) -> list[str]:
    """The first ``MAX_BLOCKS`` of ``blocks`` (``total`` in all; each a comment and the
    statements it explains, made as they are read), while they hold at most
    ``MAX_LISTED`` statements, then one comment on what the rest would do. A block is
    never cut (a ``SET ROLE`` stays with its ``RESET ROLE``), and the first is always
    kept."""
    lines: list[str] = []
    statements = kept = 0
    for block in islice(blocks, MAX_BLOCKS):
        count = sum(1 for line in block if not line.startswith("--"))
        if kept and statements + count > MAX_LISTED:
            break
        lines += block
        statements += count
        kept += 1
    if total > kept:
        lines.append(sql_comment(f"… and {total - kept} more like these: {rest}"))
    return lines


def sql_comment(text: str) -> str:
    """``text`` as one SQL comment line.

    Role and database names may contain line breaks; written raw into a ``--``
    comment they would end it and turn the rest of the name into SQL. Every character
    that is not printable is escaped (``identifiers.printable``): nor may a name run an
    escape code, or turn the text around it, when the script is shown.
    """
    return f"-- {printable(text)}"


def in_database(database: str) -> str:
    """The comment that opens a script which must run inside ``database``, with how to
    get there in psql."""
    name = quote_ident(database)
    return sql_comment(f"run in database {name} ({psql_connect(database)})")


def psql_connect(database: str) -> str:
    """psql's way into ``database``, or why there is none."""
    if not database.isprintable():
        # A meta-command is one line of text: psql cannot name it.
        return "psql's \\connect cannot name it: use a client that takes the name as a parameter"
    if "=" in database or database.startswith(("postgresql://", "postgres://")):
        # psql would read the name as a connection string: give it one, keeping the
        # rest of the connection.
        value = database.replace("\\", "\\\\").replace("'", "\\'").replace('"', '""')
        return f"psql: \\connect -reuse-previous=on \"dbname='{value}'\""
    return f"psql: \\connect {quote_ident(database)}"


def verify_membership(member: str, role: str, version_num: int) -> str:
    """A query an auditor can run to confirm ``member`` may use or become ``role``."""
    mode = "SET" if version_num >= PG16 else "MEMBER"
    return f"SELECT pg_has_role({quote_literal(member)}, {quote_literal(role)}, '{mode}');"
