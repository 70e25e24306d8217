"""What the PGW-CHAN foreign-server rules share: the channels, and who can open them.

A channel is a ``postgres_fdw`` or ``dblink_fdw`` foreign server whose target is
this server (or possibly is: ``_endpoints``). A session through it opens the
foreign server's ``dbname``, or, when it names none, the database named after the
remote user (libpq's default). A role opens it when a user mapping applies to it
(its own, else PUBLIC's: PostgreSQL looks for the current user's mapping first) and it
holds USAGE on the server (``dblink_connect``, ``CREATE FOREIGN TABLE``; foreign
tables already made are the ISO-004 grants on them) in a database it can connect to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass

from pgwarden.access.connecting import Connecting
from pgwarden.access.remediation import in_database
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.channels import ForeignServer, UserMapping
from pgwarden.model.context import BuiltInKey
from pgwarden.model.frameworks.catalogue import NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Control, Verdict, quote_ident
from pgwarden.rules.channels._endpoints import Target, resolve, server_identity
from pgwarden.rules.control_sets import INFORMATION_FLOW
from pgwarden.rules.database_contents import inspected_databases

# Foreign-data wrappers that open libpq connections (dblink uses either).
LIBPQ_WRAPPERS = frozenset({"postgres_fdw", "dblink_fdw"})
# A channel is a flow between tenants, opened with access a role should not hold.
CHANNEL_CONTROLS = (*INFORMATION_FLOW, Control(NIST_800_53, "AC-6"))


_SERVER_USAGE = BuiltInKey("foreign-server-usage")


@dataclass(frozen=True)
class Channel:
    """A foreign server in ``database`` (of ``app``) that leads to this server."""

    database: str
    app: str | None
    server: ForeignServer
    target: Target

    @property
    def resource(self) -> str:
        return f"foreign-server/{self.database}.{self.server.name}"

    def reached(self, mapping: UserMapping) -> str | None:
        """The database a session through ``mapping`` opens (None: not known)."""
        if self.target.database is not None:
            return self.target.database
        if not mapping.options_visible:
            return None
        # libpq's default database is the user name: the remote user's, else the
        # local role's (a PUBLIC mapping without one: each role's own, not judged).
        return mapping.remote_user or mapping.role

    def evidence(self) -> dict[str, object]:
        server = self.server
        return {
            "database": self.database,
            "database_app": self.app,
            "foreign_server": server.name,
            "wrapper": server.wrapper,
            "owner": server.owner,
            "options": dict(server.options),
            "target": self.target.match,
            "why": self.target.why,
        }


def channels(
    tenancy: Tenancy, snapshot: ServerSnapshot, rule_id: str
) -> Iterator[Channel | Verdict]:
    """Every foreign server that leads (or may lead) to this server, then blind spots."""
    identity = server_identity(snapshot)
    for item in inspected_databases(tenancy, rule_id, "foreign_servers", "foreign servers"):
        if isinstance(item, Verdict):
            yield item
            continue
        for server in item.detail.foreign_servers or ():
            if server.wrapper not in LIBPQ_WRAPPERS:
                continue
            target = resolve(server.options, identity)
            if target.match != "elsewhere":
                yield Channel(item.name, item.app, server, target)


def _public_usage(server: ForeignServer) -> bool:
    return any(i.grantee is None and "USAGE" in i.privileges for i in server.acl)


def _usage_holders(tenancy: Tenancy, database: str, server: ForeignServer) -> frozenset[str]:
    """Every role that holds USAGE on ``server`` other than through PUBLIC (its owner's
    users and its USAGE grantees'), worked out once per server: each mapping asks."""
    cache: dict[tuple[str, str], frozenset[str]] = tenancy.context.analysis(
        _SERVER_USAGE, tenancy, dict
    )
    key = (database, server.name)
    if key not in cache:
        graph = tenancy.graph
        holders = [server.owner] + [
            i.grantee for i in server.acl if i.grantee is not None and "USAGE" in i.privileges
        ]
        cache[key] = frozenset(u for h in holders for u in (h, *graph.user_names(h)))
    return cache[key]


def mapping_users(
    tenancy: Tenancy, channel: Channel, mapping: UserMapping, app: str | None
) -> tuple[Iterable[str], int]:
    """The principals of another app than ``app`` that open ``channel`` through
    ``mapping``: in name order (read lazily), and how many.

    A role's mapping serves that role as the current user: itself, or a role that may
    ``SET ROLE`` to it. PUBLIC's serves every role without a mapping of its own that
    holds USAGE: with PUBLIC's USAGE that is everyone who can connect to the server's
    database (``Connecting``: one fact about the database, never a list per mapping),
    else the users of the server's owner and of its USAGE grantees.
    """
    db = tenancy.databases.get(channel.database)
    if db is None:
        return (), 0
    server = channel.server
    own = {m.role for m in server.user_mappings if m.role is not None}
    if mapping.role is None and _public_usage(server):
        connecting = Connecting.of(tenancy, db)
        left_out = {r for r in (*own, *tenancy.app_roles(app or "")) if r in connecting}
        users = (r for r in connecting if r not in own and tenancy.role_apps.get(r) != app)
        return users, len(connecting) - len(left_out)
    graph = tenancy.graph
    usage = _usage_holders(tenancy, channel.database, server)
    public = _public_usage(server)
    candidates: Set[str] = (
        {mapping.role} | graph.set_role_users(mapping.role)
        if mapping.role is not None
        else usage - own
    )
    found = sorted(
        role
        for role in candidates
        if tenancy.is_principal(role)
        and tenancy.role_apps.get(role) != app
        and tenancy.can_connect(db, role)
        and (public or role in usage)
    )
    return found, len(found)


def drop_mapping(channel: Channel, mapping: UserMapping) -> str:
    """The script that removes one user mapping from its foreign server."""
    who = "PUBLIC" if mapping.role is None else quote_ident(mapping.role)
    return "\n".join(
        [
            in_database(channel.database),
            f"DROP USER MAPPING FOR {who} SERVER {quote_ident(channel.server.name)};",
        ]
    )
