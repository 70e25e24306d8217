"""PGW-CHAN-002 and -003: user mappings that open a channel, and the credentials they hold."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.remediation import sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.channels import UserMapping
from pgwarden.model.evidence import (
    MAX_WAYS_SHOWN,
    put_capped,
    put_capped_mapping,
    summarize_targets,
)
from pgwarden.model.frameworks.catalogue import NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import (
    Control,
    Rule,
    Section,
    ServerContext,
    Verdict,
    quote_ident,
    quote_literal,
)
from pgwarden.rules.channels._foreign import (
    CHANNEL_CONTROLS,
    Channel,
    channels,
    drop_mapping,
    mapping_users,
)
from pgwarden.rules.privileged import privilege_of

EMBEDDED_AUTHENTICATORS = Control(NIST_800_53, "IA-5(7)")


def _who(mapping: UserMapping) -> str:
    return "PUBLIC" if mapping.role is None else f"role {mapping.role!r}"


def _principal(mapping: UserMapping) -> str:
    return "PUBLIC" if mapping.role is None else f"role/{mapping.role}"


class _MappingRule(Rule):
    """A rule that judges each user mapping of each channel (``judge``)."""

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        for channel in channels(tenancy, snapshot, self.id):
            if isinstance(channel, Verdict):
                yield channel
                continue
            yield from self.judge_channel(tenancy, channel)

    def judge_channel(self, tenancy: Tenancy, channel: Channel) -> Iterable[Verdict]:
        """The verdicts on the user mappings of ``channel``: each judged on its own."""
        for mapping in channel.server.user_mappings:
            yield from self.judge(tenancy, channel, mapping)

    def judge(self, tenancy: Tenancy, channel: Channel, mapping: UserMapping) -> Iterable[Verdict]:
        """The verdicts on one user mapping of ``channel``."""
        raise NotImplementedError


class ForeignRoleUsesChannel(_MappingRule):
    """A user mapping lets a role of another app into an app's database through a foreign
    server.

    A user mapping is what turns a foreign server into a working channel: the role it
    maps (or every role, for a mapping FOR PUBLIC) opens a session in the target
    database as the mapping's remote user, with ``dblink_connect`` or a foreign
    table, once it holds USAGE on the server in a database it can connect to. When
    that role belongs to another app than the target database (or to no app), one
    tenant works inside another's database, whatever CONNECT grants say.

    Violation: A user mapping on a foreign server that leads (or may lead) to this
    server applies to a principal (an app role or a login of no app) that can connect
    to the foreign server's database and holds USAGE on the server, and the database
    the channel opens belongs to another app.

    Fix: DROP USER MAPPING FOR <role> SERVER <server>; (or REVOKE USAGE ON FOREIGN
    SERVER <server> FROM <role>), in the foreign server's database.
    """

    id = "PGW-CHAN-002"
    severity = "high"
    controls = CHANNEL_CONTROLS
    requires = (
        Section.TENANCY_MAP,
        Section.POSTGRES,
    )

    def judge(self, tenancy: Tenancy, channel: Channel, mapping: UserMapping) -> Iterable[Verdict]:
        database = channel.reached(mapping)
        app = tenancy.app_databases.get(database) if database is not None else None
        if database is None or app is None:
            return
        foreign, total = mapping_users(tenancy, channel, mapping, app)
        if not total:
            return
        server = quote_ident(channel.server.name)
        remote = (
            f"as {mapping.remote_user!r}"
            if mapping.remote_user
            else "as the remote user its hidden options name"
            if not mapping.options_visible
            else "as a remote user of its own name"
        )
        verb = "opens" if channel.target.match == "this server" else "may open"
        subject = (
            _who(mapping)
            if mapping.role is not None
            else f"PUBLIC ({total} principal(s) of other apps)"
        )
        alternative = "PUBLIC" if mapping.role is None else quote_ident(mapping.role)
        evidence: dict[str, object] = {
            **channel.evidence(),
            "reaches": {"database": database, "app": app},
            "mapping": mapping.model_dump(exclude={"option_names"}),
        }
        put_capped_mapping(
            evidence, "principals", ((u, tenancy.role_apps.get(u)) for u in foreign), total
        )
        yield Verdict(
            resource=channel.resource,
            principal=_principal(mapping),
            app=app,
            message=f"{subject} {verb} sessions in database {database!r} of app {app!r} "
            f"{remote} through foreign server {channel.server.name!r} in database "
            f"{channel.database!r}",
            evidence=evidence,
            remediation="\n".join(
                [
                    drop_mapping(channel, mapping),
                    sql_comment(
                        f"or keep the mapping and take the server away: REVOKE USAGE ON FOREIGN "
                        f"SERVER {server} FROM {alternative};"
                    ),
                ]
            ),
        )


def _hidden_options(channel: Channel, hidden: list[UserMapping]) -> Verdict:
    """One ``error`` for the mappings of a foreign server whose options the auditor may
    not read: one cause and one check, however many mappings share them."""
    server = channel.server
    readers = []
    if any(m.role is None for m in hidden):
        readers.append(f"members of the server's owner {server.owner!r} (a mapping FOR PUBLIC)")
    roles = sorted(m.role for m in hidden if m.role is not None)
    if roles:
        readers.append("each mapped role itself" if len(roles) > 1 else f"{roles[0]!r} itself")
    who = " or ".join([*readers, "a superuser"])
    if len(hidden) == 1:
        [mapping] = hidden
        what = f"the options of the user mapping for {_who(mapping)}"
        principal: str | None = _principal(mapping)
        evidence: dict[str, object] = {**channel.evidence(), "mapping": mapping.model_dump()}
    else:
        names = [_who(m) for m in sorted(hidden, key=lambda m: (m.role is not None, m.role or ""))]
        what = f"the options of {len(hidden)} user mappings (for {summarize_targets(names)})"
        principal = None
        evidence = {**channel.evidence()}
        put_capped(
            evidence,
            "hidden_mappings",
            (m.model_dump() for m in hidden),
            len(hidden),
            f"SELECT usename FROM pg_user_mappings WHERE srvname = {quote_literal(server.name)};"
            f"  -- in {channel.database!r}",
            limit=MAX_WAYS_SHOWN,
        )
    return Verdict(
        resource=channel.resource,
        principal=principal,
        app=channel.app,
        status="error",
        message=f"{what} on foreign server {server.name!r} in database {channel.database!r}, "
        f"which leads to this server, are hidden from the auditor: only {who} may read them",
        evidence=evidence,
        remediation=sql_comment(
            f"check as {who}: SELECT usename, umoptions FROM pg_user_mappings "
            f"WHERE srvname = {quote_literal(server.name)};"
        ),
    )


class CredentialsInUserMapping(_MappingRule):
    """A user mapping stores the credentials of a privileged role or of another app's role.

    A user mapping on a foreign server that leads back to this server logs in as its
    remote ``user`` with the stored ``password``. The mapped role can read both in
    ``pg_user_mappings`` (the options are shown to the mapped role itself while it may
    use the server), and every session through the channel acts with the remote
    user's privileges: stored credentials of the admin, of a member of
    ``azure_pg_admin``, of a superuser, or of another app's role hand that identity
    to whoever the mapping serves.

    Violation: A user mapping on a foreign server that leads (or may lead) to this
    server names as its remote user a privileged role (unless it maps that role to
    itself) or a role of an app other than the mapped role's (for PUBLIC, or a role of
    no app, than the foreign server's database's app). An ``error`` when the mapping's
    options are hidden: ``pg_user_mappings`` shows them only to the mapped role itself,
    to members of the server's owner for a mapping FOR PUBLIC, and to superusers.

    Fix: DROP USER MAPPING FOR <role> SERVER <server>; then change the remote role's
    password (it may have been read): ALTER ROLE <remote user> PASSWORD '…'; a channel
    that must stay logs in as a role of the app that owns it, with only the privileges
    it needs.
    """

    id = "PGW-CHAN-003"
    severity = "critical"
    controls = (EMBEDDED_AUTHENTICATORS, Control(NIST_800_53, "AC-6"))
    requires = (
        Section.TENANCY_MAP,
        Section.POSTGRES,
    )

    def judge_channel(self, tenancy: Tenancy, channel: Channel) -> Iterable[Verdict]:
        # The mappings whose options are hidden share one cause: one error for them.
        mappings = channel.server.user_mappings
        hidden = [m for m in mappings if not m.options_visible]
        if hidden:
            yield _hidden_options(channel, hidden)
        for mapping in mappings:
            if mapping.options_visible:
                yield from self.judge(tenancy, channel, mapping)

    def judge(self, tenancy: Tenancy, channel: Channel, mapping: UserMapping) -> Iterable[Verdict]:
        server = channel.server
        remote = mapping.remote_user
        if remote is None or remote == mapping.role or remote not in tenancy.roles:
            return  # the role's own name, or no role of this server
        risk = privilege_of(tenancy, remote)
        if risk is None:
            holder_app = tenancy.role_apps.get(mapping.role or "") or channel.app
            remote_app = tenancy.role_apps.get(remote)
            if remote_app is None or remote_app == holder_app:
                return
            risk = f"a role of app {remote_app!r}"
        stored = " and its stored password" if mapping.password_stored else ""
        yield Verdict(
            resource=channel.resource,
            principal=_principal(mapping),
            app=tenancy.role_apps.get(remote) or channel.app,
            message=f"the user mapping for {_who(mapping)} on foreign server {server.name!r} "
            f"in database {channel.database!r} logs in to this server as {remote!r} ({risk})"
            f"{stored}: the mapped role reads them in pg_user_mappings and acts as {remote!r}",
            evidence={
                **channel.evidence(),
                "mapping": mapping.model_dump(),
                "remote_user": remote,
                "remote_user_app": tenancy.role_apps.get(remote),
                "risk": risk,
            },
            remediation="\n".join(
                [
                    drop_mapping(channel, mapping),
                    sql_comment(
                        f"then change {remote!r}'s password (it may have been read): "
                        f"ALTER ROLE {quote_ident(remote)} PASSWORD '…';"
                    ),
                ]
            ),
        )
