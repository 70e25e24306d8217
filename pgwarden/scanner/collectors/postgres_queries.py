"""Named catalog queries of the PostgreSQL collector.

Every query is set-based: its cost is one round trip whatever the number of roles,
tables or grants. Each notes the PostgreSQL versions it serves. ACLs are exploded
server-side with ``aclexplode`` (a NULL ACL means the built-in default, made explicit
with ``acldefault``) and come back as JSON; grantee ``null`` is PUBLIC.
"""

from __future__ import annotations

# PostgreSQL 11+: identity and the session's own read-only state.
SERVER_INFO = """
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       session_user::text AS connected_as,
       current_setting('transaction_read_only') AS read_only,
       pg_has_role(session_user, 'pg_read_all_stats', 'USAGE') AS reads_all_stats
"""

# PostgreSQL 11+: every setting the session may read. Settings hidden from a
# non-superuser without pg_read_all_settings simply do not appear.
SETTINGS = """
SELECT name, setting, unit, source FROM pg_settings
"""

_ACL_JSON = """
COALESCE((SELECT json_agg(json_build_object(
            'grantee', CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END,
            'grantor', pg_get_userbyid(a.grantor)::text,
            'privilege', a.privilege_type,
            'grantable', a.is_grantable))
          FROM aclexplode({acl}) AS a), '[]'::json)
"""

# PostgreSQL 11+: databases with their effective ACL.
DATABASES = f"""
SELECT d.datname::text AS name,
       pg_get_userbyid(d.datdba)::text AS owner,
       d.datallowconn AS allow_connections,
       d.datistemplate AS is_template,
       d.datconnlimit AS connection_limit,
       d.datacl IS NULL AS acl_is_default,
       {_ACL_JSON.format(acl="COALESCE(d.datacl, acldefault('d', d.datdba))")} AS acl
FROM pg_database AS d
ORDER BY d.datname
"""

# PostgreSQL 11+: pg_roles, never pg_authid (no password verifiers leave the server).
ROLES = """
SELECT rolname::text AS name, rolcanlogin AS login, rolsuper AS superuser,
       rolcreaterole AS createrole, rolcreatedb AS createdb,
       rolreplication AS replication, rolbypassrls AS bypassrls,
       rolinherit AS inherit, rolconnlimit AS connection_limit,
       rolvaliduntil::text AS valid_until, oid = 10 AS bootstrap_superuser
FROM pg_roles
ORDER BY rolname
"""

# PostgreSQL 16+: membership options are per grant.
MEMBERSHIPS_16 = """
SELECT pg_get_userbyid(m.roleid)::text AS role, pg_get_userbyid(m.member)::text AS member,
       pg_get_userbyid(m.grantor)::text AS grantor, m.admin_option,
       m.inherit_option, m.set_option
FROM pg_auth_members AS m
"""

# PostgreSQL 11-15: inheritance is the member's rolinherit; SET ROLE is always allowed.
MEMBERSHIPS_11 = """
SELECT pg_get_userbyid(m.roleid)::text AS role, pg_get_userbyid(m.member)::text AS member,
       pg_get_userbyid(m.grantor)::text AS grantor, m.admin_option,
       r.rolinherit AS inherit_option, true AS set_option
FROM pg_auth_members AS m JOIN pg_roles AS r ON r.oid = m.member
"""

# PostgreSQL 11+: client sessions. Without pg_read_all_stats the backend type, client
# address, state and start of other roles' sessions are NULL, while user, database and
# application stay visible: such rows are kept (a filter on backend_type alone would
# silently drop every session the auditor most needs to see).
SESSIONS = """
SELECT pid, datname::text AS database, usename::text AS "user", application_name,
       host(client_addr) AS client_addr, backend_start, state,
       (backend_type IS NOT NULL) AS client_visible
FROM pg_stat_activity
WHERE backend_type = 'client backend'
   OR (backend_type IS NULL AND datname IS NOT NULL AND usename IS NOT NULL)
"""

_USER_SCHEMAS = """
n.nspname NOT IN ('pg_catalog', 'information_schema')
AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
"""

# PostgreSQL 11+ (prokind is 11+): one round trip per database: schemas with ACLs,
# default privileges, relation and routine grants to non-owners (one row per grantee
# and grantor: a REVOKE only removes what its grantor granted), and ownership counts.
# A routine's NULL proacl is the built-in default (PUBLIC EXECUTE) and is skipped.
DATABASE_DETAIL = f"""
SELECT
  (SELECT COALESCE(json_agg(json_build_object(
            'name', n.nspname::text,
            'owner', pg_get_userbyid(n.nspowner)::text,
            'acl', {_ACL_JSON.format(acl="COALESCE(n.nspacl, acldefault('n', n.nspowner))")})
          ORDER BY n.nspname), '[]'::json)
     FROM pg_namespace AS n WHERE {_USER_SCHEMAS}) AS schemas,
  (SELECT COALESCE(json_agg(json_build_object(
            'role', pg_get_userbyid(d.defaclrole)::text,
            'schema_name', n.nspname::text,
            'object_type', d.defaclobjtype::text,
            'acl', {_ACL_JSON.format(acl="d.defaclacl")})), '[]'::json)
     FROM pg_default_acl AS d LEFT JOIN pg_namespace AS n ON n.oid = d.defaclnamespace)
     AS default_privileges,
  (SELECT COALESCE(json_agg(g), '[]'::json) FROM (
     SELECT n.nspname::text AS schema_name, c.relname::text AS name, c.relkind::text AS kind,
            NULL::text AS arguments,
            pg_get_userbyid(c.relowner)::text AS owner,
            CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
            pg_get_userbyid(a.grantor)::text AS grantor,
            array_agg(a.privilege_type ORDER BY a.privilege_type) AS privileges
     FROM pg_class AS c
     JOIN pg_namespace AS n ON n.oid = c.relnamespace
     CROSS JOIN LATERAL aclexplode(c.relacl) AS a
     WHERE c.relacl IS NOT NULL AND c.relkind IN ('r', 'v', 'm', 'S', 'f', 'p')
       AND a.grantee <> c.relowner AND {_USER_SCHEMAS}
     GROUP BY 1, 2, 3, 4, 5, 6, 7
     UNION ALL
     SELECT n.nspname::text, p.proname::text, 'routine:' || p.prokind::text,
            pg_get_function_identity_arguments(p.oid),
            pg_get_userbyid(p.proowner)::text,
            CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END,
            pg_get_userbyid(a.grantor)::text,
            array_agg(a.privilege_type ORDER BY a.privilege_type)
     FROM pg_proc AS p
     JOIN pg_namespace AS n ON n.oid = p.pronamespace
     CROSS JOIN LATERAL aclexplode(p.proacl) AS a
     WHERE p.proacl IS NOT NULL AND a.grantee <> p.proowner AND {_USER_SCHEMAS}
     GROUP BY 1, 2, 3, 4, 5, 6, 7) AS g) AS object_grants,
  (SELECT COALESCE(json_agg(o), '[]'::json) FROM (
     SELECT pg_get_userbyid(c.relowner)::text AS role, c.relkind::text AS kind,
            count(*)::int AS count
     FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'v', 'm', 'S', 'f', 'p') AND {_USER_SCHEMAS}
     GROUP BY 1, 2) AS o) AS ownership
"""
