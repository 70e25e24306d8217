"""Catalog rows as snapshot objects: settings, databases and what each database holds.

Pure functions of the rows the named queries return (``queries.py``); no I/O. What the
auditor could not see in a catalog it read is recorded as a Gap by the caller.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pgwarden.collect.postgres import reach
from pgwarden.collect.postgres.acl import (
    AclSyntaxError,
    grantee_prefix,
    parse_acl,
    parse_acl_item,
)
from pgwarden.model.channels import ForeignServer
from pgwarden.model.errors import CollectorError
from pgwarden.model.snapshot import (
    AclItem,
    Database,
    DatabaseDetail,
    DefaultPrivilege,
    Gap,
    LargeObjects,
    ObjectGrant,
    Ownership,
    SchemaInfo,
    Setting,
)

# Settings the rules read; their absence from pg_settings means the auditor may not see them.
WATCHED_SETTINGS = (
    "password_encryption",
    "ssl",
    "ssl_min_protocol_version",
    "log_connections",
    "log_disconnections",
    "log_checkpoints",
    "max_connections",
    "superuser_reserved_connections",
)
# Settings that only exist from a given server_version_num on: watching them on an
# older server would report a visibility gap for a setting that cannot exist.
WATCHED_SETTINGS_SINCE = {"reserved_connections": 160000}

# pg_default_acl.defaclobjtype ('L', large objects: PostgreSQL 18+).
_DEFAULT_ACL_TYPES = {
    "r": "table",
    "S": "sequence",
    "f": "function",
    "T": "type",
    "n": "schema",
    "L": "large object",
}
# Relation kinds that hold data or name it, and routine kinds (prefixed "routine:").
_RELKINDS = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
    "f": "foreign table",
    "routine:f": "function",
    "routine:p": "procedure",
    "routine:a": "aggregate",
    "routine:w": "window function",
}
# Ownership is counted per relation kind, and for large objects under a key no relkind
# can take.
_LARGE_OBJECT = "large object"
_OWNED_KINDS = {**_RELKINDS, _LARGE_OBJECT: "large object"}


def reported_kinds() -> frozenset[str]:
    """The relation kinds (``pg_class.relkind``) and routine kinds (``routine:`` and
    ``pg_proc.prokind``) whose grants and ownership are reported."""
    return frozenset(_RELKINDS)


# A grant as read: schema, name, kind, owner, ACL item text, routine arguments.
GrantKey = tuple[str, str, str, str, str, str | None]
_UNSEEN: Any = object()


class KnownGrants:
    """The grants read so far, shared by every database of a server.

    Databases made from the same migrations (an app's, or its tenants') repeat the same
    grants, which are then built once and shared (they are immutable). A key costs
    more than the grant it finds (it keeps the ACL item's text), so it is kept only
    while sharing pays: the first ``ROOM`` keys, and ``ROOM_PER_FIND`` more for each
    grant found again. A server whose databases repeat nothing holds ``ROOM`` keys
    (about 4 MB); one whose databases repeat each other's grants comes to keep them
    all, in whatever order they are read. The collector's threads share one instance;
    ``found`` may miss a count when two add at once, which only delays room.
    """

    ROOM = 20_000
    ROOM_PER_FIND = 4

    def __init__(self) -> None:
        self.grants: dict[GrantKey, ObjectGrant | None] = {}
        self.found = 0

    def has_room(self) -> bool:
        return len(self.grants) < self.ROOM + self.ROOM_PER_FIND * self.found


def settings_of(
    rows: Iterable[Mapping[str, Any]], version_num: int, gaps: list[Gap]
) -> dict[str, Setting]:
    """The rows of ``SETTINGS`` by name; a watched setting the auditor cannot see
    becomes a gap in ``gaps``."""
    settings = {
        row["name"]: Setting(
            name=row["name"], value=row["setting"] or "", unit=row["unit"], source=row["source"]
        )
        for row in rows
    }
    watched = [
        *WATCHED_SETTINGS,
        *(name for name, since in WATCHED_SETTINGS_SINCE.items() if version_num >= since),
    ]
    for name in watched:
        if name not in settings:
            gaps.append(
                Gap(
                    section=f"setting:{name}",
                    reason=f"setting {name} is not visible to the auditor",
                    fix="GRANT pg_read_all_settings TO <auditor> (or pg_monitor)",
                )
            )
    return settings


def parse_entra_label(label: str) -> tuple[str, str | None]:
    """A ``pgaadauth`` label's principal kind and object id (both lower case).

    ``aadauth,oid=<object id>,type=user|group|service[,admin]``; a label without a
    readable type is still an Entra principal, of kind ``unknown``.
    """
    fields: dict[str, str] = {}
    for part in label.split(","):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip().lower()
    return fields.get("type") or "unknown", fields.get("oid") or None


def entra_principals(
    rows: Iterable[Mapping[str, Any]], role_names: Mapping[int, str]
) -> dict[str, dict[str, str | None]]:
    """The rows of ``ENTRA_LABELS`` as the Role fields of each labelled role, by name."""
    found: dict[str, dict[str, str | None]] = {}
    for row in rows:
        name = role_names.get(row["oid"])
        if name is None:
            continue  # a role made after the role list was read
        kind, object_id = parse_entra_label(str(row["label"]))
        found[name] = {"entra_kind": kind, "entra_object_id": object_id}
    return found


def databases_of(rows: Iterable[Mapping[str, Any]]) -> Iterator[Database]:
    """The rows of ``DATABASES`` as Databases; an ACL that does not parse stops the
    collection (CollectorError): the server-wide view would be wrong."""
    for row in rows:
        try:
            acl = parse_acl(row["acl"])
        except AclSyntaxError as exc:
            raise CollectorError(f"database {row['name']}: {exc}") from None
        yield Database(
            name=row["name"],
            owner=row["owner"],
            allow_connections=row["allow_connections"],
            is_template=row["is_template"],
            connection_limit=row["connection_limit"],
            acl_is_default=row["acl_is_default"],
            acl=acl,
        )


def _user_schema(name: str) -> bool:
    """Not a system schema (pg_catalog, information_schema, TOAST or temporary ones)."""
    return name not in ("pg_catalog", "information_schema") and not name.startswith(
        ("pg_toast", "pg_temp_")
    )


def _column_grants(
    schema: str, name: str, owner: str, kind: str, column: str, acl: list[str]
) -> Iterator[ObjectGrant]:
    """A column's ACL as grants on that column."""
    for text in acl:
        grant = _object_grant(schema, name, kind, owner, parse_acl_item(text), column=column)
        if grant is not None:
            yield grant


def _object_grant(
    schema: str,
    name: str,
    kind: str,
    owner: str,
    item: AclItem,
    arguments: str | None = None,
    column: str | None = None,
) -> ObjectGrant | None:
    """An ACL item of an object (or of its column) as a grant; None for the owner's own
    privileges, which are ownership, not a grant."""
    if item.grantee == owner:
        return None
    return ObjectGrant(
        schema_name=schema,
        name=sys.intern(name),
        kind=_RELKINDS[kind],
        owner=owner,
        grantee=item.grantee,
        privileges=item.privileges,
        grantor=item.grantor,
        arguments=arguments,
        column=column,
    )


def _schema_default_acl(owner: str) -> tuple[AclItem, ...]:
    """``acldefault('n', owner)``: a schema's owner holds USAGE and CREATE, nobody else."""
    return (AclItem(grantee=owner, grantor=owner, privileges=("CREATE", "USAGE")),)


def database_objects(
    database: str,
    result_sets: Iterable[Iterable[tuple[Any, ...]]],
    role_names: Mapping[int, str],
    known_grants: KnownGrants,
    mapping_rows: Callable[[], Iterable[tuple[Any, ...]]] = tuple,
    column_rows: Callable[[], Iterable[tuple[Any, ...]]] = tuple,
    large_object_rows: Callable[[], Iterable[tuple[Any, ...]]] = tuple,
    unread: Mapping[str, str] | None = None,
) -> DatabaseDetail:
    """Join the result sets of ``DATABASE_OBJECTS`` (see its comment) into a DatabaseDetail.

    The result sets are read once each, in order, and the relations' rows one at a
    time: a database of 100,000 tables never holds all their rows as Python objects at
    once (the server's reply itself is held whole by libpq).
    ``known_grants`` holds grants read before, shared by every database of the server
    (``KnownGrants``).
    ``mapping_rows`` reads ``FOREIGN_SERVER_MAPPINGS``' rows, asked for only where
    there are foreign servers; ``column_rows`` reads ``COLUMN_GRANTS``' rows and
    ``large_object_rows`` ``LARGE_OBJECTS``' (the caller passes ``tuple`` where the
    server says there are none); ``unread`` names, by the time they have been read,
    the sections that could not be, with why: these three (``foreign_servers`` for the
    mappings: the foreign servers are then not read at all), and those of
    ``DATABASE_OBJECTS`` that were refused (``DATABASE_OBJECT_SECTIONS``: their result
    sets come empty). Raises AclSyntaxError for an ACL that does not parse.
    """

    def role(oid: int) -> str:
        # A role created after the role list was read: named as pg_get_userbyid would.
        return role_names.get(oid) or f"unknown (OID={oid})"

    sets = iter(result_sets)
    schema_rows = list(next(sets))
    namespaces = {oid: name for oid, name, _owner, _acl in schema_rows}
    user_namespaces = {oid for oid, name in namespaces.items() if _user_schema(name)}
    schemas = sorted(
        (
            SchemaInfo(
                name=name,
                owner=role(owner),
                acl=parse_acl(acl) if acl is not None else _schema_default_acl(role(owner)),
            )
            for oid, name, owner, acl in schema_rows
            if oid in user_namespaces
        ),
        key=lambda s: s.name,
    )
    grants: list[ObjectGrant] = []
    # What each owner's own ACL items start with, where its name is written bare.
    owners: dict[str, str | None] = {}

    def grant(
        namespace: int, name: str, owner: str, acl: list[str], kind: str, arguments: str | None
    ) -> None:
        schema = namespaces[namespace]
        own = owners.get(owner, _UNSEEN)
        if own is _UNSEEN:
            own = owners[owner] = grantee_prefix(owner)
        for text in acl:
            if own is not None and text.startswith(own):
                continue  # the owner's own privileges: ownership, not a grant
            key = (schema, name, kind, owner, text, arguments)
            known = known_grants.grants.get(key, _UNSEEN)
            if known is _UNSEEN:
                known = _object_grant(schema, name, kind, owner, parse_acl_item(text), arguments)
                if known_grants.has_room():
                    known_grants.grants[key] = known
            else:
                known_grants.found += 1
            if known is not None:
                grants.append(known)

    owned: dict[tuple[str, str], int] = {}
    for namespace, name, owner, acl, kind in next(sets):
        if namespace not in user_namespaces or kind not in _RELKINDS:
            continue  # system schemas; indexes, TOAST tables, composite types
        key = (role(owner), kind)
        owned[key] = owned.get(key, 0) + 1
        if acl is not None:
            grant(namespace, name, key[0], acl, kind, None)
    routine_rows = list(next(sets))
    for namespace, name, owner, acl, kind, arguments, *_definer in routine_rows:
        if acl is not None and namespace in user_namespaces and f"routine:{kind}" in _RELKINDS:
            grant(namespace, name, role(owner), acl, f"routine:{kind}", arguments)
    defaults = [
        DefaultPrivilege(
            role=role(owner),
            schema_name=namespaces.get(namespace),
            object_type=_DEFAULT_ACL_TYPES.get(kind, "table"),
            acl=parse_acl(acl),
        )
        for namespace, owner, kind, acl in next(sets)
    ]
    server_rows = list(next(sets))
    # Only a database with foreign servers pays for reading user mappings.
    servers: tuple[ForeignServer, ...] | None = reach.foreign_servers(
        server_rows, mapping_rows() if server_rows else (), role
    )
    if unread and "foreign_servers" in unread:
        # They, or their user mappings, could not be read: not read, never "none".
        servers = None
    # Each set is read before the next is asked for (they share one cursor).
    extension_rows = list(next(sets))
    language_rows = list(next(sets))
    for namespace, name, owner, kind, column, acl in column_rows():
        if namespace in user_namespaces and kind in _RELKINDS:
            grants.extend(
                _column_grants(namespaces[namespace], name, role(owner), kind, column, acl)
            )
    large_objects = []
    for owner_oid, acl, count, oids in large_object_rows():
        owner = role(owner_oid)
        owned[owner, _LARGE_OBJECT] = owned.get((owner, _LARGE_OBJECT), 0) + count
        large_objects.append(
            LargeObjects(
                owner=owner,
                acl=tuple(i for i in parse_acl(acl) if i.grantee != owner) if acl else (),
                count=count,
                oids=tuple(oids),
            )
        )
    user_schemas = {oid: namespaces[oid] for oid in user_namespaces}
    # Read as the sets were: a section whose statement was refused is not read, never
    # "none there" (its rows are none; ``unread`` says why).
    lost = unread or {}
    return DatabaseDetail(
        name=database,
        collected=True,
        schemas=tuple(schemas),
        default_privileges=tuple(defaults),
        object_grants=tuple(grants),
        ownership=tuple(
            Ownership(role=owner, kind=_OWNED_KINDS[kind], count=count)
            for (owner, kind), count in sorted(owned.items())
        ),
        definer_functions=None
        if "routines" in lost
        else reach.definer_functions(routine_rows, user_schemas, role),
        foreign_servers=servers,
        extensions=None
        if "extensions" in lost
        else reach.extensions(extension_rows, namespaces, role),
        untrusted_languages=None
        if "untrusted_languages" in lost
        else reach.untrusted_languages(language_rows, role),
        large_objects=tuple(sorted(large_objects, key=lambda lo: lo.oids)),
        unread=dict(unread or {}),
    )
