"""Named catalog queries of the PostgreSQL collector.

Every query is set-based: its cost is one round trip whatever the number of roles,
tables or grants. Each notes the PostgreSQL versions it serves. ACLs come back as
``aclitem[]``, loaded as lists of item texts (a NULL ACL that means the built-in
default is made explicit with ``acldefault``) and parsed by ``collectors.acl``.
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

# PostgreSQL 11+: databases with their effective ACL.
DATABASES = """
SELECT d.datname::text AS name,
       pg_get_userbyid(d.datdba)::text AS owner,
       d.datallowconn AS allow_connections,
       d.datistemplate AS is_template,
       d.datconnlimit AS connection_limit,
       d.datacl IS NULL AS acl_is_default,
       COALESCE(d.datacl, acldefault('d', d.datdba)) AS acl
FROM pg_database AS d
ORDER BY d.datname
"""

# PostgreSQL 11+: pg_roles, never pg_authid (no password verifiers leave the server).
ROLES = """
SELECT oid::bigint AS oid, rolname::text AS name, rolcanlogin AS login, rolsuper AS superuser,
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

# PostgreSQL 11+ (prokind is 11+): one round trip per database, one row per entry:
#   n  a schema, with its effective ACL (NULL is the owner's default, made explicit);
#   c  a relation with an explicit ACL;
#   p  a routine with an explicit ACL, with its identity arguments (a NULL proacl is
#      the built-in default, PUBLIC EXECUTE, and is not listed);
#   d  an ALTER DEFAULT PRIVILEGES entry (namespace 0: the whole database);
#   o  how many relations of one kind a role owns in one schema.
# Owners come as role OIDs (named from the server-wide role list), schemas as namespace
# OIDs and ACLs as aclitem[]: the collector joins and parses them (collectors.acl) and
# keeps user schemas only. Objects initdb created have OIDs below 16384
# (FirstNormalObjectId, which the OID counter never goes below, even after wrapping):
# ``oid >= 16384`` keeps every user relation and routine and reads them by index.
# Flat on purpose: in a fresh backend, planning (catalog cache misses) is most of a
# query's cost, and this shape plans and runs in a third of the time of the same data
# joined, exploded and aggregated into JSON server-side.
DATABASE_OBJECTS = """
SELECT 'n' AS entry, n.oid AS namespace, n.nspname::text AS name, n.nspowner AS owner,
       COALESCE(n.nspacl, acldefault('n', n.nspowner)) AS acl, NULL::text AS kind,
       NULL::text AS arguments, NULL::int AS count
FROM pg_namespace AS n
UNION ALL
SELECT 'c', c.relnamespace, c.relname::text, c.relowner, c.relacl, c.relkind::text, NULL, NULL
FROM pg_class AS c
WHERE c.oid >= 16384 AND c.relacl IS NOT NULL
UNION ALL
SELECT 'p', p.pronamespace, p.proname::text, p.proowner, p.proacl, p.prokind::text,
       pg_get_function_identity_arguments(p.oid), NULL
FROM pg_proc AS p
WHERE p.oid >= 16384 AND p.proacl IS NOT NULL
UNION ALL
SELECT 'd', d.defaclnamespace, NULL, d.defaclrole, d.defaclacl, d.defaclobjtype::text, NULL,
       NULL
FROM pg_default_acl AS d
UNION ALL
SELECT 'o', c.relnamespace, NULL, c.relowner, NULL, c.relkind::text, NULL, count(*)::int
FROM pg_class AS c
WHERE c.oid >= 16384
GROUP BY c.relnamespace, c.relowner, c.relkind
"""
