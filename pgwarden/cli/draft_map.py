"""``pgwarden init``: draft a tenancy map from what a live server shows.

One app per non-system database; its roles are guessed from CONNECT grants and
object ownership. Every guess carries a ``# REVIEW`` comment: a draft is a starting
point for the owners, never a statement of what they meant.
"""

from __future__ import annotations

import json
import re

from pgwarden.collect.dsn import resolve_dsn
from pgwarden.collect.endpoint import endpoint_of, server_name_of
from pgwarden.collect.postgres.collector import PostgresCollector
from pgwarden.collect.postgres.scram import ScramKeyReuse
from pgwarden.model.errors import CollectorError, ConnectError
from pgwarden.model.snapshot import AZURE_ROLES, SYSTEM_DATABASES, PostgresSnapshot


def _toml_string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _app_name(database: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", database.lower()).strip("-")
    return name or "app"


def auditor_sql(databases: list[str], role: str = "pgwarden_auditor") -> str:
    """The least-privilege auditor: pg_monitor plus CONNECT on every database."""
    from pgwarden.model.identifiers import quote_ident

    lines = [
        f"CREATE ROLE {quote_ident(role)} LOGIN PASSWORD '<choose one>' CONNECTION LIMIT 10;",
        f"GRANT pg_monitor TO {quote_ident(role)};",
    ]
    lines += [
        f"GRANT CONNECT ON DATABASE {quote_ident(db)} TO {quote_ident(role)};" for db in databases
    ]
    return "\n".join(lines)


def draft_from_snapshot(pg: PostgresSnapshot, name: str, dsn_hint: str) -> str:
    """The TOML draft for one collected server."""
    roles = {role.name: role for role in pg.roles}
    admin_guess = pg.connected_as if pg.connected_as in roles else None
    out = [
        "# pgwarden tenancy map, drafted by `pgwarden init`.",
        "# Every line marked REVIEW is a guess: check it against what the owners meant.",
        "",
        "[policy]",
        'fail_on = "high"',
        "min_backup_retention_days = 14",
        'admin_application_names = ["psql", "pgAdmin*", "azdata*"]',
        "",
        "[[server]]",
        f"name = {_toml_string(name)}",
        f"dsn = {_toml_string(dsn_hint)}",
    ]
    if admin_guess:
        out.append(
            f"admin_role = {_toml_string(admin_guess)}   # REVIEW: the role init connected as"
        )
    out.append("platform_roles = []   # REVIEW: roles that legitimately span databases")
    app_names: set[str] = set()
    databases = [
        db for db in pg.databases if db.name not in SYSTEM_DATABASES and not db.is_template
    ]
    for db in databases:
        candidates: dict[str, str] = {}
        for item in db.acl:
            if item.grantee and "CONNECT" in item.privileges:
                candidates.setdefault(item.grantee, "has CONNECT")
        detail = pg.detail(db.name)
        if detail is not None:
            for owned in detail.ownership:
                candidates.setdefault(owned.role, f"owns {owned.count} {owned.kind}(s)")
        guessed = {
            role: why
            for role, why in candidates.items()
            if role in roles
            and roles[role].login
            and not roles[role].superuser
            and role != admin_guess
            and role not in AZURE_ROLES
            and not role.startswith("pg_")
        }
        app = _app_name(db.name)
        while app in app_names:
            app += "-2"
        app_names.add(app)
        out += [
            "",
            "[[server.app]]",
            f"name = {_toml_string(app)}   # REVIEW: one app per database is a guess",
            f"databases = [{_toml_string(db.name)}]",
        ]
        if guessed:
            reasons = "; ".join(f"{r}: {w}" for r, w in sorted(guessed.items()))
            out.append(
                f"roles = [{', '.join(_toml_string(r) for r in sorted(guessed))}]"
                f"   # REVIEW: guessed ({reasons})"
            )
        else:
            out.append("roles = []   # REVIEW: no login role has CONNECT or owns objects here")
        out.append('# secret = "keyvault:VAULT/SECRET"   # where this app\'s DSN must live')
    out += [
        "",
        "# Least-privilege auditor for pgwarden (run as the admin):",
        *(f"#   {line}" for line in auditor_sql([db.name for db in databases]).splitlines()),
        "",
    ]
    return "\n".join(out)


def draft_config(dsn_source: str, name: str | None) -> str:
    """Connect, collect quickly, and draft the tenancy map."""
    dsn = resolve_dsn(dsn_source, "--dsn")
    endpoint = endpoint_of(dsn)
    collector = PostgresCollector(
        dsn, session_samples=1, session_window_seconds=0, scram_key_reuse=ScramKeyReuse()
    )
    try:
        pg = collector.collect()
    except CollectorError as exc:
        raise ConnectError(str(exc)) from None
    server_name = name or server_name_of(endpoint)
    # Never write a literal DSN (a secret) into the draft: keep only references.
    hint = dsn_source if dsn_source.startswith(("env:", "keyvault:")) else "env:PGWARDEN_DSN"
    return draft_from_snapshot(pg, server_name, hint)
