"""What the PGW-FUNC rules share: each SECURITY DEFINER routine, its owner, path and callers.

A SECURITY DEFINER routine runs with its owner's privileges. How much that hands its
callers depends on two things:

* its ``search_path``: without ``SET search_path`` on the routine it runs with the
  caller's, so every unqualified name in its body (a table, a function, an operator)
  resolves in schemas the caller chooses, where the caller can create look-alikes:
  the caller runs any SQL as the owner (``ALTER ROLE <owner> PASSWORD ...``
  included). A pinned path that lists a schema where PUBLIC or a caller may CREATE
  is no better. A pinned path without ``pg_temp`` last still searches the caller's
  temporary schema first for tables (``pg_temp_last`` in the evidence);
* who may call it: EXECUTE (PUBLIC's by default) held by a principal that can
  connect to the database.

Trigger functions are not read: only the server calls them. What the body does with
its arguments (dynamic SQL) is not judged: pgwarden does not read routine bodies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pgwarden.access.connecting import Connecting
from pgwarden.access.remediation import capped_statements, in_database, sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.context import BuiltInKey
from pgwarden.model.evidence import MAX_LISTED, put_capped_mapping
from pgwarden.model.frameworks.catalogue import CIS_POSTGRESQL_16, CIS_POSTGRESQL_17, NIST_800_53
from pgwarden.model.identifiers import quote_literal
from pgwarden.model.routines import DefinerFunction
from pgwarden.model.snapshot import DatabaseDetail, ServerSnapshot
from pgwarden.rules.base import Control, Rule, ServerContext, Verdict, quote_ident
from pgwarden.rules.database_contents import Inspected, inspected_databases
from pgwarden.rules.functions._callers import Callers, CallerSet, Granted
from pgwarden.rules.privileged import privilege_of

# CIS PostgreSQL "Ensure excessive function privileges are revoked": 4.3 in the 16
# edition, 4.5 in the 17 (whose 4.3 is the administrative privileges item).
DEFINER_CONTROLS = (
    Control(CIS_POSTGRESQL_16, "4.3"),
    Control(CIS_POSTGRESQL_17, "4.5"),
    Control(NIST_800_53, "AC-6(10)"),
)


_DEFINER_GRANTS = BuiltInKey("definer-grants")
_DEFINER_REACHED = BuiltInKey("definer-reached")
_DEFINERS = BuiltInKey("definers")


def search_path_schemas(value: str) -> list[str]:
    """The schema names of a ``search_path`` value (``"$user"`` and ``pg_temp`` kept)."""
    names: list[str] = []
    for part in value.split(","):
        name = part.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('""', '"')
        if name:
            names.append(name)
    return names


@dataclass(frozen=True)
class Definer:
    """One SECURITY DEFINER routine in an app database, judged."""

    database: str
    app: str
    function: DefinerFunction
    owner_power: str | None
    owner_app: str | None
    owner_is_principal: bool
    writable_path: tuple[str, ...]
    callers: Callers
    # Whether PUBLIC may CREATE in the routine's own schema (pinning it there is no fix).
    home_writable: bool = False

    @property
    def pinned(self) -> bool:
        """Whether the routine pins a search_path no caller can plant objects in."""
        return self.function.search_path is not None and not self.writable_path

    @property
    def signature(self) -> str:
        f = self.function
        return f"{quote_ident(f.schema_name)}.{quote_ident(f.name)}({f.arguments})"

    @property
    def resource(self) -> str:
        f = self.function
        return f"function/{self.database}.{f.schema_name}.{f.name}({f.arguments})"

    def evidence(self, callers: CallerSet) -> dict[str, object]:
        f = self.function
        path = search_path_schemas(f.search_path) if f.search_path is not None else None
        shown: dict[str, object] = {
            "database": self.database,
            "database_app": self.app,
            "function": f"{f.schema_name}.{f.name}({f.arguments})",
            "kind": f.kind,
            "owner": f.owner,
            "owner_app": self.owner_app,
            "search_path": f.search_path,
        }
        put_capped_mapping(shown, "callers", callers.first(MAX_LISTED), len(callers))
        if self.owner_power is not None:
            shown["owner_privilege"] = self.owner_power
        if self.writable_path:
            shown["writable_schemas_in_path"] = list(self.writable_path)
        if path is not None:
            shown["pg_temp_last"] = bool(path) and path[-1] == "pg_temp"
        return shown

    def remediation(self, tenancy: Tenancy, callers: CallerSet, keep_app: str | None) -> str:
        """Pin the path, and take EXECUTE from the callers that must not have it."""
        f = self.function
        routine = f"ROUTINE {self.signature}"
        lines = [in_database(self.database)]
        if not self.pinned and self.home_writable:
            lines.append(
                sql_comment(
                    f"anyone may create objects in {f.schema_name!r}: schema-qualify every "
                    "name in the body, then pin the path to the catalog alone"
                )
            )
            lines.append(f"ALTER {routine} SET search_path = pg_catalog, pg_temp;")
        elif not self.pinned:
            lines.append(
                f"ALTER {routine} SET search_path = {quote_ident(f.schema_name)}, pg_temp;"
            )
        public = any(i.grantee is None and "EXECUTE" in i.privileges for i in f.acl)
        if public:
            keep, kept = _kept(tenancy, self, callers, keep_app)
            if kept:
                lines.append(sql_comment("first keep EXECUTE for the roles meant to call it"))
                lines.extend(
                    capped_statements(
                        (f"GRANT EXECUTE ON {routine} TO {quote_ident(r)};" for r in keep),
                        f"one for each other role of app {keep_app!r} that calls it",
                        total=kept,
                    )
                )
            lines.append(f"REVOKE EXECUTE ON {routine} FROM PUBLIC;")
        grantees = {
            i.grantee
            for i in f.acl
            if i.grantee is not None and i.grantee != f.owner and "EXECUTE" in i.privileges
        }
        revokes = [
            f"REVOKE EXECUTE ON {routine} FROM {quote_ident(grantee)};"
            for grantee in sorted(grantees)
            if _used_by(tenancy, grantee, callers)
        ]
        lines.extend(
            capped_statements(
                revokes,
                f"one for each other grantee of EXECUTE that callers of another app use "
                f"(every grantee: {_grantees_query(f)})",
            )
        )
        lines.append(
            sql_comment(
                f"or, if it needs none of the privileges of {f.owner!r}: "
                f"ALTER {routine} SECURITY INVOKER;"
            )
        )
        return "\n".join(lines)


def _used_by(tenancy: Tenancy, grantee: str, callers: CallerSet) -> bool:
    """Whether one of ``callers`` is ``grantee`` or can use it: asked of the smaller
    side, the grantee's users or the callers (an app's group of thousands, of which
    only a stray login is reported, is not read for each routine)."""
    if grantee in callers:
        return True
    users = tenancy.graph.user_names(grantee)
    if len(callers) < len(users):
        return any(role in users for role in callers)
    return any(role in callers for role in users)


def _kept(
    tenancy: Tenancy, definer: Definer, callers: CallerSet, keep_app: str | None
) -> tuple[Iterable[str], int]:
    """The roles of ``keep_app`` (in the map's order) that call the routine, are not
    among the ``callers`` reported, and would lose it with PUBLIC's EXECUTE, read as
    needed (a script shows the first few); and how many there are.

    A reported caller of ``keep_app`` is never kept: with callers outside another app
    (or outside none) every caller of ``keep_app`` is reported. Outside ``keep_app`` when
    it is the database's, they are its roles that can connect (``Connecting``, the
    granted among them), less the owner: read from the list the database shares with
    its app's other databases, not by asking each role of the app.
    """
    if keep_app is None or callers.app != keep_app:
        return (), 0
    owner = definer.function.owner
    connecting = definer.callers.connecting
    if keep_app == connecting.app:
        able = connecting.own_in_map_order
        return (r for r in able if r != owner), connecting.own_count_besides(owner)
    found = [
        r for r in tenancy.app_roles(keep_app) if r != owner and definer.callers.how(r) is not None
    ]
    return found, len(found)


def _grantees_query(function: DefinerFunction) -> str:
    """A query, run in the routine's database, listing who holds EXECUTE on it (by
    names in the catalogs: a cast to ``regprocedure`` needs USAGE on the schema, which
    an auditor may lack)."""
    return (
        "SELECT a.grantee::regrole FROM pg_proc p JOIN pg_namespace n ON n.oid = "
        "p.pronamespace, aclexplode(p.proacl) a WHERE n.nspname = "
        f"{quote_literal(function.schema_name)} AND p.proname = {quote_literal(function.name)} "
        "AND pg_get_function_identity_arguments(p.oid) = "
        f"{quote_literal(function.arguments)} AND a.privilege_type = 'EXECUTE' ORDER BY 1;"
    )


def _public_create(detail: DatabaseDetail) -> set[str]:
    """The schemas of the database where PUBLIC may CREATE (anyone plants objects)."""
    return {
        schema.name
        for schema in detail.schemas
        if any(i.grantee is None and "CREATE" in i.privileges for i in schema.acl)
    }


def _writable(open_schemas: set[str], function: DefinerFunction) -> tuple[str, ...]:
    """The schemas of a pinned path where PUBLIC may CREATE, in path order."""
    if function.search_path is None:
        return ()
    return tuple(s for s in search_path_schemas(function.search_path) if s in open_schemas)


def _callers(tenancy: Tenancy, function: DefinerFunction, connecting: Connecting) -> Callers:
    """Who can call ``function``: through each explicit grant (the grantee and the roles
    that can use it, when they can connect), and with PUBLIC EXECUTE everyone who can
    connect (``connecting``, never listed here).

    What the grants reach is worked out once for the server for each grantee, and for
    each set of grants and owner, in databases the same principals can connect to
    (``Connecting.key``): not again for each routine of each database."""
    grantees: list[str] = []
    public = False
    for item in function.acl:
        if "EXECUTE" not in item.privileges:
            continue
        if item.grantee is None:
            public = True
        else:
            grantees.append(item.grantee)
    shared: dict[tuple[object, ...], Granted] = tenancy.context.analysis(
        _DEFINER_GRANTS, tenancy, dict
    )
    key = (tuple(grantees), function.owner, connecting.key)
    granted = shared.get(key)
    if granted is None:
        how: dict[str, str] = {}
        for grantee in grantees:  # (a later grant names how, as it did one by one)
            how.update(_reached(tenancy, grantee, connecting))
        how.pop(function.owner, None)
        granted = shared[key] = Granted(dict(sorted(how.items())), tenancy.role_apps)
    return Callers(granted, public, connecting, function.owner)


def _reached(tenancy: Tenancy, grantee: str, connecting: Connecting) -> dict[str, str]:
    """The principals that can connect (``connecting``) and use ``grantee``'s EXECUTE,
    each with how: once per grantee and set of principals that can connect."""
    shared: dict[tuple[object, ...], dict[str, str]] = tenancy.context.analysis(
        _DEFINER_REACHED, tenancy, dict
    )
    key = (grantee, connecting.key)
    found = shared.get(key)
    if found is None:
        users = {grantee} | tenancy.graph.user_names(grantee)
        found = shared[key] = {
            role: "EXECUTE" if role == grantee else f"EXECUTE through {grantee!r}"
            for role in sorted(users)
            if tenancy.is_principal(role) and role in connecting
        }
    return found


def _judged(tenancy: Tenancy, inspected: Inspected, app: str) -> list[Definer]:
    """The routines of one database, judged once for the three rules that ask."""
    # The context's shared analyses live as long as one server's evaluation.
    cache: dict[str, list[Definer]] = tenancy.context.analysis(_DEFINERS, tenancy, dict)
    key = inspected.name
    if key not in cache:
        functions = inspected.detail.definer_functions or ()
        if not functions:
            cache[key] = []
            return []
        # Who can connect is one fact about the database, shared by its routines.
        connecting = Connecting.of(tenancy, tenancy.databases[inspected.name])
        open_schemas = _public_create(inspected.detail)
        cache[key] = [
            Definer(
                database=inspected.name,
                app=app,
                function=function,
                owner_power=privilege_of(tenancy, function.owner),
                owner_app=tenancy.role_apps.get(function.owner),
                owner_is_principal=tenancy.is_principal(function.owner),
                writable_path=_writable(open_schemas, function),
                callers=_callers(tenancy, function, connecting),
                home_writable=function.schema_name in open_schemas,
            )
            for function in functions
        ]
    judged: list[Definer] = cache[key]
    return judged


def definers(tenancy: Tenancy, rule_id: str) -> Iterator[Definer | Verdict]:
    """Every SECURITY DEFINER routine of every app database, then the blind spots."""
    for item in inspected_databases(
        tenancy, rule_id, "definer_functions", "SECURITY DEFINER routines"
    ):
        if isinstance(item, Verdict):
            yield item
        elif item.app is not None:
            yield from _judged(tenancy, item, item.app)


class DefinerRule(Rule):
    """A rule that judges each SECURITY DEFINER routine of each app database (``judge``)."""

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        for definer in definers(tenancy, self.id):
            if isinstance(definer, Verdict):
                yield definer
            elif (verdict := self.judge(tenancy, definer)) is not None:
                yield verdict

    def judge(self, tenancy: Tenancy, definer: Definer) -> Verdict | None:
        """The verdict on one routine, or None when this rule has nothing to say."""
        raise NotImplementedError
