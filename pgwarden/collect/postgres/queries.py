"""Named catalog queries of the PostgreSQL collector.

Every query is set-based: its cost is one round trip whatever the number of roles,
tables or grants. Each notes the PostgreSQL versions it serves. ACLs come back as
``aclitem[]``, loaded as lists of item texts (a NULL ACL that means the built-in
default is made explicit, with ``acldefault`` or by ``catalog.py``) and parsed by
``acl.py``.
"""

from __future__ import annotations

# PostgreSQL 11+: identity and the session's own read-only state; where the session
# landed (its database, the server's address and port on it: NULL over a Unix socket),
# which is what "this server" means when a foreign server or a pg_cron job names a host.
SERVER_INFO = """
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       session_user::text AS connected_as,
       current_setting('transaction_read_only') AS read_only,
       pg_has_role(session_user, 'pg_read_all_stats', 'USAGE') AS reads_all_stats,
       current_database()::text AS database,
       host(inet_server_addr()) AS server_address,
       inet_server_port() AS server_port
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

# PostgreSQL 11+: the Microsoft Entra principals among the roles. Azure marks each
# with a security label of provider pgaadauth: ``aadauth,oid=<object id>,type=user``
# (``group``, ``service``; ``,admin`` for administrators). PostgreSQL grants SELECT on
# pg_shseclabel to PUBLIC (and so to pg_monitor's members); catalog.py parses the labels.
ENTRA_LABELS = """
SELECT objoid::bigint AS oid, label FROM pg_shseclabel
WHERE provider = 'pgaadauth' AND classoid = 'pg_authid'::regclass
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

# Relation kinds reported (catalog.py names them), as DATABASE_OBJECTS reads them:
# tables, partitioned tables, views, materialized views, sequences and foreign tables.
RELATION_KINDS = ("r", "p", "v", "m", "S", "f")

# PostgreSQL 11+ (prokind is 11+): what one database holds, as seven statements sent in
# one round trip (one Query message; the results come back in this order):
#   schemas        every schema with its ACL (NULL: the owner's default, USAGE and
#                  CREATE, made explicit by catalog.py);
#   relations      every user relation of the kinds pgwarden reports (RELATION_KINDS):
#                  its ACL (NULL: owner-only default) and owner, for the grants and for
#                  counting what each role owns; indexes, TOAST tables and composite
#                  types are left on the server (a table with a primary key and a text
#                  column is four relations, one of them reported);
#   routines       user routines with an explicit ACL, and SECURITY DEFINER ones, with
#                  their identity arguments, settings (proconfig: a pinned search_path)
#                  and return type (trigger functions are nobody's to call); a NULL
#                  proacl is the built-in default, PUBLIC EXECUTE;
#   default ACLs   ALTER DEFAULT PRIVILEGES entries (namespace 0: the whole database);
#   foreign servers  where dblink and postgres_fdw may connect (their user mappings are
#                  read only where there are servers: FOREIGN_SERVER_MAPPINGS);
#   extensions     created ones (plpgsql, which initdb creates, has an OID below 16384);
#   languages      untrusted procedural languages (plpython3u, plperlu, ...).
# Owners come as role OIDs (named from the server-wide role list), schemas as namespace
# OIDs and ACLs as aclitem[]: catalog.py joins and parses them (acl.py) and
# keeps user schemas. Objects initdb created have
# OIDs below 16384 (FirstNormalObjectId, which the OID counter never goes below, even
# after wrapping): ``oid >= '16384'::oid`` keeps every user relation and routine.
# Shaped for a fresh backend, where parsing and planning (catalog cache misses: each
# operator, function, cast and grouping the server must look up) cost more than
# reading the rows: plain selects, no casts, no grouping, no UNION to reconcile, and an
# oid literal so ``>=`` resolves without searching every ``>=`` operator. In this shape
# the round trip costs about 40 % of the same data as one UNION query grouped
# server-side (3.6 ms against 9.6 ms in a fresh backend). The last three statements
# add about 0.1 ms to it in a fresh backend (small catalogs, no joins). The relkind
# filter costs nothing measurable there and keeps a database of 100,000 tables from
# sending 400,000 rows (their indexes and TOAST tables).
DATABASE_OBJECTS = (
    "SELECT oid, nspname, nspowner, nspacl FROM pg_namespace",
    "SELECT relnamespace, relname, relowner, relacl, relkind FROM pg_class"
    " WHERE oid >= '16384'::oid AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
    "SELECT pronamespace, proname, proowner, proacl, prokind,"
    " pg_get_function_identity_arguments(oid), prosecdef, proconfig, prorettype FROM pg_proc"
    " WHERE oid >= '16384'::oid AND (proacl IS NOT NULL OR prosecdef)",
    "SELECT defaclnamespace, defaclrole, defaclobjtype, defaclacl FROM pg_default_acl",
    "SELECT oid, srvname, srvowner, srvacl, srvoptions FROM pg_foreign_server",
    "SELECT extname, extversion, extowner, extnamespace FROM pg_extension"
    " WHERE oid >= '16384'::oid",
    "SELECT lanname, lanowner FROM pg_language WHERE lanispl AND NOT lanpltrusted",
)

# The section of a database each of DATABASE_OBJECTS' statements reads, in order (the
# names a DatabaseDetail's ``unread`` gives them). When the server refuses the round
# trip (a catalog whose SELECT was revoked from PUBLIC, a statement timeout on a huge
# catalog), the statements are sent again one at a time and a statement refused loses
# its section, not the database; None: the schemas, without which nothing else in the
# database can be named (refused, the database is not read).
DATABASE_OBJECT_SECTIONS = (
    None,
    "relations",
    "routines",
    "default_privileges",
    "foreign_servers",
    "extensions",
    "untrusted_languages",
)

# PostgreSQL 11+: the databases holding a column privilege (``GRANT SELECT (c) ON t TO
# r``) or a large object, read once for the whole server from the shared pg_shdepend
# (readable by PUBLIC). It records each role a column's ACL names other than its
# table's owner, and each large object's owner and grantees. Reading every database's
# column ACLs would cost about 0.5 ms of server time a database (an index scan of every
# user relation's attributes), most of what reading it costs, for a catalog nearly
# every database leaves empty; large objects are rarer still. COLUMN_GRANTS and
# LARGE_OBJECTS run only where this says. PostgreSQL records no dependency on PUBLIC
# nor on the bootstrap superuser: a column privilege granted to PUBLIC alone by the
# table's owner, or a large object of the bootstrap superuser granted to PUBLIC alone,
# is not seen in a database holding no other. Two selects, each answered from
# pg_shdepend's index on (dbid, classid, objid, ...) one database at a time: the
# ORDER BY ... LIMIT 1 holds the planner to it (beside 200,000 large objects, EXISTS
# was planned as a hash of every large object's row, 35 ms, and a bare LIMIT 1 as a
# scan of the whole catalog per database, 0.3 s; this takes 0.15 ms).
SPARSE_CATALOG_DATABASES = """
SELECT DISTINCT d.datname::text AS name, 'column grants' AS holds
FROM pg_shdepend AS s JOIN pg_database AS d ON d.oid = s.dbid
WHERE s.deptype = 'a' AND s.classid = 'pg_class'::regclass AND s.objsubid > 0
UNION ALL
SELECT d.datname::text, 'large objects'
FROM pg_database AS d,
     LATERAL (SELECT FROM pg_shdepend AS s
              WHERE s.dbid = d.oid AND s.classid = 'pg_largeobject'::regclass
              ORDER BY s.dbid, s.classid, s.objid LIMIT 1) AS one
"""

# PostgreSQL 11+: the column privileges of one database's user relations, each column's
# ACL with its relation (catalog.py keeps the relation kinds it reports).
COLUMN_GRANTS = """
SELECT c.relnamespace, c.relname, c.relowner, c.relkind, a.attname, a.attacl
FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
WHERE a.attrelid >= '16384'::oid AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attacl IS NOT NULL
"""

# PostgreSQL 11+: one database's large objects, one row per owner and ACL (a NULL ACL
# is the default: the owner alone), with how many share them and the first 20 OIDs
# (as many as a finding lists, ``model.evidence.MAX_LISTED``: a test holds the two
# together), never a row per object: a database may hold millions. Grouped on the
# ACL's text (an ordered aggregate cannot hash-group aclitem[], which has no sort
# order); the ACL itself is the first object's.
# pg_largeobject_metadata is readable by PUBLIC (the contents, pg_largeobject, are not
# read).
LARGE_OBJECTS = """
SELECT g.lomowner, m.lomacl, g.count, g.oids
FROM (SELECT lomowner, count(*) AS count, (array_agg(oid ORDER BY oid))[1:20] AS oids
      FROM pg_largeobject_metadata GROUP BY lomowner, lomacl::text) AS g
JOIN pg_largeobject_metadata AS m ON m.oid = g.oids[1]
"""

# PostgreSQL 11+: the wrapper and the user mappings of each foreign server, read only in
# a database that has foreign servers (a second round trip there): planning the
# pg_user_mappings view costs about 0.6 ms in a fresh backend, most of what reading a
# database costs, for a catalog nearly every database leaves empty. The view shows a
# mapping's options only to the mapped role (with USAGE on the server or a member of its
# owner), to the owner's members for a PUBLIC mapping, and to superusers; the last
# column repeats that condition, so hidden options are told from no options.
FOREIGN_SERVER_MAPPINGS = """
SELECT s.oid, w.fdwname, m.umuser, m.umoptions,
       m.umoptions IS NOT NULL OR current_setting('is_superuser') = 'on'
       OR pg_has_role(s.srvowner, 'USAGE') AND (m.umuser = 0 OR m.usename = current_user)
       OR m.usename = current_user AND has_server_privilege(s.oid, 'USAGE')
       AS options_visible
FROM pg_foreign_server AS s
JOIN pg_foreign_data_wrapper AS w ON w.oid = s.srvfdw
LEFT JOIN pg_user_mappings AS m ON m.srvid = s.oid
"""

# PostgreSQL 11+, pg_cron 1.0+ (jobname is 1.3+, active 1.1+: read through to_jsonb so
# every version answers): pg_cron's jobs, read in cron.database_name. Never the command
# (it may hold a password). cron.job has row-level security showing each role its own
# jobs; sees_all says whether the auditor is exempt (superuser, BYPASSRLS, or the
# policy is off). One row even without jobs, for sees_all.
CRON_JOBS = """
SELECT j.jobid, to_jsonb(j) ->> 'jobname' AS jobname, j.schedule, j.database, j.username,
       COALESCE((to_jsonb(j) ->> 'active')::boolean, true) AS active,
       j.nodename, j.nodeport, v.sees_all
FROM (SELECT NOT c.relrowsecurity OR r.rolsuper OR r.rolbypassrls AS sees_all
      FROM pg_class AS c, pg_roles AS r
      WHERE c.oid = 'cron.job'::regclass AND r.rolname = current_user) AS v
LEFT JOIN cron.job AS j ON true
ORDER BY j.jobid
"""
