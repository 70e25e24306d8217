"""Catalog rows of what reaches past a database's grants, as snapshot objects.

``SECURITY DEFINER`` routines, foreign servers with their user mappings, extensions,
untrusted languages and pg_cron's jobs (``queries.py``). Pure functions; no I/O. No
secret leaves here: of a user mapping's options only the remote user name and whether
a password is stored are kept, of a foreign server's only the connection target, of
a pg_cron job never the command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pgwarden.collect.postgres.acl import parse_acl
from pgwarden.model.channels import TARGET_OPTIONS, CronJob, ForeignServer, PgCron, UserMapping
from pgwarden.model.extensions import Extension, ProceduralLanguage
from pgwarden.model.routines import DefinerFunction
from pgwarden.model.snapshot import AclItem

RoleName = Callable[[int], str]

# pg_proc.prorettype of trigger and event trigger functions (fixed OIDs): only the
# server calls them, never a role, so running as their owner hands nobody anything.
_TRIGGER_TYPES = frozenset({2279, 3838})
_ROUTINE_KINDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}


def _options(pairs: Iterable[str] | None) -> dict[str, str]:
    """An options array (``{key=value,...}``) as a dict; a value may hold ``=``."""
    found: dict[str, str] = {}
    for pair in pairs or ():
        key, _, value = pair.partition("=")
        found[key] = value
    return found


def _default_execute(owner: str) -> tuple[AclItem, ...]:
    """``acldefault('f', owner)``: the owner and PUBLIC may EXECUTE."""
    return (
        AclItem(grantee=None, grantor=owner, privileges=("EXECUTE",)),
        AclItem(grantee=owner, grantor=owner, privileges=("EXECUTE",)),
    )


def definer_functions(
    rows: Iterable[tuple[Any, ...]], schemas: Mapping[int, str], role: RoleName
) -> tuple[DefinerFunction, ...]:
    """The SECURITY DEFINER rows of the routines statement, in user schemas."""
    found: list[DefinerFunction] = []
    for namespace, name, owner_oid, acl, kind, arguments, definer, config, returns in rows:
        if not definer or returns in _TRIGGER_TYPES or namespace not in schemas:
            continue
        owner = role(owner_oid)
        found.append(
            DefinerFunction(
                schema_name=schemas[namespace],
                name=name,
                arguments=arguments,
                kind=_ROUTINE_KINDS.get(kind, "function"),
                owner=owner,
                acl=parse_acl(acl) if acl is not None else _default_execute(owner),
                search_path=_options(config).get("search_path"),
            )
        )
    return tuple(sorted(found, key=lambda f: (f.schema_name, f.name, f.arguments)))


def _mapping(role: str | None, options: list[str] | None, visible: bool) -> UserMapping:
    if not visible:
        return UserMapping(role=role, options_visible=False)
    values = _options(options)
    return UserMapping(
        role=role,
        options_visible=True,
        remote_user=values.get("user"),
        password_stored="password" in values,
        option_names=tuple(sorted(values)),
    )


def foreign_servers(
    server_rows: Iterable[tuple[Any, ...]],
    mapping_rows: Iterable[tuple[Any, ...]],
    role: RoleName,
) -> tuple[ForeignServer, ...]:
    """The foreign servers statement joined with ``FOREIGN_SERVER_MAPPINGS``' rows."""
    wrappers: dict[int, str] = {}
    mappings: dict[int, list[UserMapping]] = {}
    for server_oid, wrapper, user_oid, options, visible in mapping_rows:
        wrappers[server_oid] = wrapper
        if user_oid is None:
            continue  # a server without user mappings (the LEFT JOIN's empty side)
        user = None if user_oid == 0 else role(user_oid)
        mappings.setdefault(server_oid, []).append(_mapping(user, options, bool(visible)))
    found: list[ForeignServer] = []
    for server_oid, name, owner_oid, acl, options in server_rows:
        owner = role(owner_oid)
        values = _options(options)
        found.append(
            ForeignServer(
                name=name,
                wrapper=wrappers.get(server_oid, "unknown"),
                owner=owner,
                # acldefault('S', owner): only the owner may use a server by default.
                acl=parse_acl(acl)
                if acl is not None
                else (AclItem(grantee=owner, grantor=owner, privileges=("USAGE",)),),
                options={k: v for k, v in values.items() if k in TARGET_OPTIONS},
                other_options=tuple(sorted(k for k in values if k not in TARGET_OPTIONS)),
                user_mappings=tuple(
                    sorted(mappings.get(server_oid, ()), key=lambda m: (m.role is not None, m.role))
                ),
            )
        )
    return tuple(sorted(found, key=lambda s: s.name))


def extensions(
    rows: Iterable[tuple[Any, ...]], schemas: Mapping[int, str], role: RoleName
) -> tuple[Extension, ...]:
    """The rows of the extensions statement."""
    return tuple(
        sorted(
            (
                Extension(
                    name=name, version=version, owner=role(owner), schema_name=schemas.get(schema)
                )
                for name, version, owner, schema in rows
            ),
            key=lambda e: e.name,
        )
    )


def untrusted_languages(
    rows: Iterable[tuple[Any, ...]], role: RoleName
) -> tuple[ProceduralLanguage, ...]:
    """The rows of the languages statement."""
    return tuple(
        sorted(
            (ProceduralLanguage(name=name, owner=role(owner)) for name, owner in rows),
            key=lambda lang: lang.name,
        )
    )


def pg_cron(database: str, rows: Iterable[Mapping[str, Any]]) -> PgCron:
    """The rows of ``CRON_JOBS``, read in pg_cron's database."""
    jobs: list[CronJob] = []
    sees_all = True
    for row in rows:
        sees_all = bool(row["sees_all"])
        if row["jobid"] is None:
            continue  # no job (the LEFT JOIN's empty side)
        jobs.append(
            CronJob(
                job_id=int(row["jobid"]),
                name=row["jobname"],
                schedule=str(row["schedule"]),
                database=str(row["database"]),
                user=str(row["username"]),
                active=bool(row["active"]),
                node=row["nodename"],
                port=row["nodeport"],
            )
        )
    return PgCron(database=database, installed=True, all_visible=sees_all, jobs=tuple(jobs))
