"""PGW-EXT: extensions and procedural languages installed in the server's databases.

Two allow-lists may apply: ``[policy] allowed_extensions`` (unset: none) and, on
Azure, the server parameter ``azure.extensions`` (only the extensions it lists can be
created). Some extensions are channels or escalation paths whatever a list says, and
are reported unless the policy names them: ``dblink`` and ``postgres_fdw`` open
connections to other databases (this server's included), ``pg_cron`` runs SQL in any
database as any role; an untrusted language runs code as the server's operating
system user.
"""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.remediation import in_database, sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.evidence import put_capped, summarize_targets
from pgwarden.model.extensions import Extension
from pgwarden.model.frameworks.catalogue import NIST_800_53
from pgwarden.model.identifiers import setting_list
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import set_parameter
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.control_sets import INFORMATION_FLOW
from pgwarden.rules.database_contents import Inspected, inspected_databases
from pgwarden.rules.server_settings import read_settings

AZURE_EXTENSIONS = "azure.extensions"
CHANNEL_EXTENSIONS: dict[str, str] = {
    "dblink": "opens connections from inside the database to any database, this server's included",
    "postgres_fdw": "maps tables of any database, this server's included, into this one",
    "pg_cron": "runs SQL on a schedule in any database as any role a superuser names",
}
LEAST_FUNCTIONALITY = Control(NIST_800_53, "CM-7")
ALLOW_LIST = Control(NIST_800_53, "CM-7(5)")


def _azure_allowed(snapshot: ServerSnapshot) -> list[str] | None:
    """The server's ``azure.extensions`` list, None when the server shows none."""
    view = read_settings(snapshot, (AZURE_EXTENSIONS,))
    if isinstance(view, str):
        return None
    value = view.values.get(AZURE_EXTENSIONS)
    return setting_list(value) if value else None


def _drop(database: str, statement: str) -> str:
    return "\n".join(
        [
            in_database(database),
            sql_comment("refused while objects depend on it: review them, or add CASCADE"),
            statement,
        ]
    )


def _extension_verdict(
    item: Inspected, extension: Extension, what: str, **evidence: object
) -> Verdict:
    """A finding on one extension of a database: ``what`` it is, and how to drop it."""
    return Verdict(
        resource=f"extension/{item.name}.{extension.name}",
        app=item.app,
        message=f"extension {extension.name!r} {extension.version} in database "
        f"{item.name!r} {what}",
        evidence={
            "database": item.name,
            "database_app": item.app,
            "extension": extension.model_dump(),
            **evidence,
        },
        remediation=_drop(item.name, f"DROP EXTENSION {quote_ident(extension.name)};"),
    )


class ExtensionNotAllowed(Rule):
    """An extension is installed that the allow-lists do not name.

    Every extension adds functions, types and often C code to a database, run with
    the privileges its install script gave them; on a shared server, what one app
    installs is reachable by whoever can connect to its database. An allow-list keeps
    that surface to what was reviewed: the policy's, and on Azure the server's own
    ``azure.extensions``, which a later change may have narrowed below what is
    already installed.

    Violation: An extension created in a database (plpgsql, built in, excepted) is not
    in ``[policy] allowed_extensions`` (when set), or not in the server parameter
    ``azure.extensions`` (when the server shows one).

    Fix: DROP EXTENSION <name>; in that database, or review it and add it to the
    allow-list it is missing from.
    """

    id = "PGW-EXT-001"
    severity = "medium"
    controls = (ALLOW_LIST,)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        policy = context.policy.allowed_extensions
        azure = _azure_allowed(snapshot)
        if policy is None and azure is None:
            return
        tenancy = Tenancy.of(snapshot, context)
        for item in inspected_databases(tenancy, self.id, "extensions", "extensions"):
            if isinstance(item, Verdict):
                yield item
                continue
            for extension in item.detail.extensions or ():
                missing_from = [
                    name
                    for name, allowed in (
                        ("[policy] allowed_extensions", policy),
                        (AZURE_EXTENSIONS, azure),
                    )
                    if allowed is not None and extension.name not in allowed
                ]
                if not missing_from:
                    continue
                yield _extension_verdict(
                    item,
                    extension,
                    f"is not in {' nor in '.join(missing_from)}",
                    missing_from=missing_from,
                    allowed_extensions=list(policy) if policy is not None else None,
                    **{AZURE_EXTENSIONS: azure},
                )


class ChannelExtensionInstalled(Rule):
    """dblink, postgres_fdw or pg_cron is installed in a database without the policy
    naming it.

    These extensions are how one database reaches another on the same server:
    ``dblink`` and ``postgres_fdw`` open client sessions from inside the database (to
    another app's database with a user mapping or a connection string; PGW-CHAN-001
    to -003 report the foreign servers pgwarden can see, but a ``dblink_connect``
    with a literal connection string leaves no trace in the catalogs), and
    ``pg_cron`` runs SQL in any database as any role (PGW-CHAN-004). Installed, they
    are a channel any role with EXECUTE on their functions can open.

    Violation: ``dblink``, ``postgres_fdw`` or ``pg_cron`` is created in a database and
    ``[policy] allowed_extensions`` does not name it.

    Fix: DROP EXTENSION <name>; in that database; if it is needed, name it in
    ``[policy] allowed_extensions`` and keep EXECUTE on its functions
    (``dblink_connect``, ...) from PUBLIC.
    """

    id = "PGW-EXT-002"
    severity = "medium"
    controls = (LEAST_FUNCTIONALITY, *INFORMATION_FLOW)
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        allowed = context.policy.allowed_extensions or ()
        tenancy = Tenancy.of(snapshot, context)
        for item in inspected_databases(tenancy, self.id, "extensions", "extensions"):
            if isinstance(item, Verdict):
                yield item
                continue
            for extension in item.detail.extensions or ():
                risk = CHANNEL_EXTENSIONS.get(extension.name)
                if risk is None or extension.name in allowed:
                    continue
                yield _extension_verdict(item, extension, f"is installed: it {risk}", risk=risk)


class UntrustedLanguageInstalled(Rule):
    """An untrusted procedural language is installed in a database.

    Functions in an untrusted language (plpython3u, plperlu, pltclu, ...) run
    unchecked code inside the server process as its operating-system user: they read
    and write every tenant's files, the server's configuration and its keys. Only
    superusers may create them, but any role with EXECUTE may call one, and a
    SECURITY DEFINER one, or one a privileged role calls, is the shortest path from a
    tenant to the host. On a managed server they are a sign the database came from
    elsewhere.

    Violation: A procedural language with ``lanpltrusted = false`` exists in a database
    and ``[policy] allowed_extensions`` does not name it.

    Fix: DROP EXTENSION <language>; (or DROP LANGUAGE <language>; when no extension
    created it) in that database, after moving the functions written in it.
    """

    id = "PGW-EXT-003"
    severity = "high"
    controls = (LEAST_FUNCTIONALITY, Control(NIST_800_53, "AC-6"))
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        allowed = context.policy.allowed_extensions or ()
        tenancy = Tenancy.of(snapshot, context)
        for item in inspected_databases(
            tenancy, self.id, "untrusted_languages", "procedural languages"
        ):
            if isinstance(item, Verdict):
                yield item
                continue
            extensions = {e.name for e in item.detail.extensions or ()}
            for language in item.detail.untrusted_languages or ():
                if language.name in allowed:
                    continue
                kind = "EXTENSION" if language.name in extensions else "LANGUAGE"
                yield Verdict(
                    resource=f"language/{item.name}.{language.name}",
                    app=item.app,
                    message=f"untrusted language {language.name!r} is installed in database "
                    f"{item.name!r}: its functions run as the server's operating-system user",
                    evidence={
                        "database": item.name,
                        "database_app": item.app,
                        "language": language.model_dump(),
                        "from_extension": kind == "EXTENSION",
                    },
                    remediation=_drop(item.name, f"DROP {kind} {quote_ident(language.name)};"),
                )


class AzureExtensionsAllowTooMuch(Rule):
    """Azure's extension allow-list lets channel extensions, or extensions outside the
    policy, be created.

    On Azure only the extensions the server parameter ``azure.extensions`` lists can
    be created, by the admin or any role it lets: the server's own allow-list is the
    control that keeps a database from growing a channel (``dblink``,
    ``postgres_fdw``, ``pg_cron``) or an extension nobody reviewed, before any scan
    can see it.

    Violation: ``azure.extensions`` lists ``dblink``, ``postgres_fdw`` or ``pg_cron``
    that ``[policy] allowed_extensions`` does not name, or (when the policy sets
    ``allowed_extensions``) any extension outside it.

    Fix: az postgres flexible-server parameter set --name azure.extensions --value
    <the policy's list>.
    """

    id = "PGW-EXT-004"
    severity = "low"
    controls = (ALLOW_LIST,)
    # Either Azure's server parameters or pg_settings will do: the rule decides.
    requires = ()

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        view = read_settings(snapshot, (AZURE_EXTENSIONS,))
        if isinstance(view, str):
            yield Verdict(
                resource=f"server/{context.name}",
                status="error",
                message=f"azure.extensions cannot be judged: {view}",
            )
            return
        value = view.values.get(AZURE_EXTENSIONS)
        if not value:
            return  # not an Azure server, or no extension may be created
        listed = setting_list(value)
        policy = context.policy.allowed_extensions
        allowed = frozenset(policy or ())
        too_much = [
            name
            for name in listed
            if (policy is not None and name not in allowed)
            or (name in CHANNEL_EXTENSIONS and name not in allowed)
        ]
        if not too_much:
            return
        refused = frozenset(too_much)
        kept = ",".join(n for n in listed if n not in refused)
        evidence: dict[str, object] = {"setting": AZURE_EXTENSIONS}
        put_capped(evidence, "value", listed, len(listed))
        put_capped(evidence, "not_allowed_by_policy", too_much, len(too_much))
        if policy is None:
            evidence["allowed_extensions"] = None
        else:
            put_capped(evidence, "allowed_extensions", policy, len(policy))
        yield Verdict(
            resource=f"setting/{AZURE_EXTENSIONS}",
            message=f"azure.extensions on server {context.name!r} allows "
            f"{summarize_targets(too_much)}, which the policy does not",
            evidence=evidence,
            remediation=set_parameter(snapshot, context, AZURE_EXTENSIONS, f"'{kept}'"),
        )


RULES = [
    ExtensionNotAllowed,
    ChannelExtensionInstalled,
    UntrustedLanguageInstalled,
    AzureExtensionsAllowTooMuch,
]
