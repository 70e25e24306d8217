"""PGW-CHAN-001: a foreign server in one database that leads to another app's database."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.remediation import in_database, sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident, quote_literal
from pgwarden.rules.channels._endpoints import server_identity
from pgwarden.rules.channels._foreign import Channel, channels
from pgwarden.rules.control_sets import INFORMATION_FLOW


class ForeignServerToOtherApp(Rule):
    """A foreign server leads to another app's database on the same server.

    ``postgres_fdw`` and ``dblink`` open ordinary client sessions from inside a
    database. A foreign server whose host is this server (its host name, its Azure
    FQDN, its own address, ``localhost``, a Unix socket, or no host at all: libpq's
    default is the local socket) and whose ``dbname`` is another app's database is a
    standing channel across the tenancy boundary: whoever gets a user mapping on it
    reads and writes that database from this one, past every CONNECT the map meant to
    withhold, and the traffic looks like an ordinary local login. A private address
    pgwarden cannot tie to this server is reported as possibly this server, with why.

    Violation: A ``postgres_fdw`` or ``dblink_fdw`` foreign server in a database leads
    (or may lead) to this server and opens a database of another app: its ``dbname``
    option, or, without one, the remote user's name. An ``error`` when the database it
    opens depends on user mapping options the auditor cannot see.

    Fix: Drop the channel where it is not needed (DROP SERVER ... CASCADE drops its user
    mappings and foreign tables: list them first); an app that needs another app's
    data gets it through an API or a replica of its own, not a channel into the
    other tenant's database.
    """

    id = "PGW-CHAN-001"
    severity = "medium"
    controls = INFORMATION_FLOW
    requires = (
        Section.TENANCY_MAP,
        Section.POSTGRES,
    )

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        identity = server_identity(snapshot).evidence()
        for channel in channels(tenancy, snapshot, self.id):
            if isinstance(channel, Verdict):
                yield channel
                continue
            yield from self._judge(tenancy, channel, identity)

    @staticmethod
    def _judge(
        tenancy: Tenancy, channel: Channel, identity: dict[str, object]
    ) -> Iterable[Verdict]:
        reached: dict[str, str] = {}
        hidden: list[str] = []
        for mapping in channel.server.user_mappings:
            database = channel.reached(mapping)
            if database is None:
                if not mapping.options_visible:
                    hidden.append("PUBLIC" if mapping.role is None else mapping.role)
            elif (app := tenancy.app_databases.get(database)) and app != channel.app:
                reached[database] = app
        if channel.target.database is not None:
            database = channel.target.database
            if (app := tenancy.app_databases.get(database)) and app != channel.app:
                reached[database] = app
        server = channel.server
        where = (
            f"foreign server {server.name!r} ({server.wrapper}) in database {channel.database!r}"
        )
        if channel.app is not None:
            where += f" of app {channel.app!r}"
        evidence = {
            **channel.evidence(),
            "user_mappings": [m.model_dump(exclude={"option_names"}) for m in server.user_mappings],
            "this_server": identity,
        }
        if not reached:
            if hidden:
                yield Verdict(
                    resource=channel.resource,
                    app=channel.app,
                    status="error",
                    message=f"{where} names no database: a session through it opens the "
                    "database named after the remote user, which the user mapping options of "
                    f"{', '.join(map(repr, hidden))} hide from the auditor (visible only to the "
                    "mapped role itself or a superuser)",
                    evidence={**evidence, "hidden_mappings": hidden},
                    remediation=sql_comment(
                        "check as a superuser: SELECT usename, umoptions FROM pg_user_mappings "
                        f"WHERE srvname = {quote_literal(server.name)};"
                    ),
                )
            return
        verb = "leads" if channel.target.match == "this server" else "may lead"
        targets = ", ".join(f"{db!r} of app {app!r}" for db, app in sorted(reached.items()))
        name = quote_ident(server.name)
        yield Verdict(
            resource=channel.resource,
            app=next(iter(sorted(reached.items())))[1],
            message=f"{where} {verb} to database {targets} on this server ({channel.target.why})",
            evidence={
                **evidence,
                "reaches": [{"database": d, "app": a} for d, a in sorted(reached.items())],
            },
            remediation="\n".join(
                [
                    in_database(channel.database),
                    sql_comment("what the channel serves, before it goes:"),
                    sql_comment(
                        "SELECT foreign_table_schema, foreign_table_name FROM "
                        "information_schema.foreign_tables WHERE foreign_server_name = "
                        f"{quote_literal(server.name)};"
                    ),
                    f"DROP SERVER {name} CASCADE;",
                ]
            ),
        )
