"""PGW-AUTH: how passwords are stored and checked (AUTH-001; AUTH-002 lives elsewhere)."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.remediation import sql_comment
from pgwarden.model.frameworks.catalogue import CIS_POSTGRESQL_16, CIS_POSTGRESQL_17, NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.server_settings import alter_system

SCRAM = "scram-sha-256"


class PasswordEncryption(Rule):
    """password_encryption is not scram-sha-256.

    password_encryption decides how the next password set with CREATE or ALTER ROLE
    is stored. An MD5 verifier is the password's hash salted only with the role name:
    whoever reads it (a backup, pg_authid through pg_read_all_data) can log in with it
    directly under md5 authentication ("pass the hash"), and it falls to brute force
    far faster than SCRAM. On a shared server one stolen verifier opens another
    tenant's database. Before PostgreSQL 14 the value ``on`` also meant MD5.

    Violation: The server's password_encryption is anything but scram-sha-256.

    Fix: Set the server parameter password_encryption to scram-sha-256 (on Azure
    Flexible Server: az postgres flexible-server parameter set --name
    password_encryption --value scram-sha-256; elsewhere ALTER SYSTEM as a superuser and
    reload), then set every role's password again so its verifier is re-hashed.
    """

    id = "PGW-AUTH-001"
    severity = "medium"
    controls = (
        Control(CIS_POSTGRESQL_16, "5.2"),
        Control(CIS_POSTGRESQL_17, "5.4"),
        Control(NIST_800_53, "IA-5(1)"),
    )
    requires = (Section.POSTGRES,)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        pg = snapshot.postgres
        assert pg is not None
        setting = pg.setting("password_encryption")
        if setting is None:
            gap = pg.gap("setting:password_encryption")
            yield Verdict(
                resource="setting/password_encryption",
                status="error",
                message=f"password_encryption is not visible to {pg.connected_as!r}",
                evidence={"connected_as": pg.connected_as},
                remediation=gap.fix.replace("<auditor>", quote_ident(pg.connected_as))
                if gap is not None and gap.fix
                else f"GRANT pg_read_all_settings TO {quote_ident(pg.connected_as)};",
            )
            return
        if setting.value.strip().lower() == SCRAM:
            if context.include_passed:
                yield Verdict(
                    resource="setting/password_encryption",
                    status="pass",
                    message=f"password_encryption is {setting.value!r}: new passwords are stored "
                    "as SCRAM-SHA-256 verifiers",
                    evidence={
                        "setting": "password_encryption",
                        "value": setting.value,
                        "source": setting.source,
                    },
                )
            return
        azure = context.server.azure
        group = azure.resource_group if azure and azure.resource_group else "<resource-group>"
        name = azure.server_name if azure and azure.server_name else context.name
        yield Verdict(
            resource="setting/password_encryption",
            message=f"password_encryption is {setting.value!r}: new passwords are stored as "
            "MD5 verifiers, not SCRAM-SHA-256",
            evidence={
                "setting": "password_encryption",
                "value": setting.value,
                "source": setting.source,
                "expected": SCRAM,
                "verify": "SHOW password_encryption;",
            },
            remediation="\n".join(
                [
                    sql_comment("Azure Database for PostgreSQL Flexible Server:"),
                    sql_comment(
                        f"  az postgres flexible-server parameter set --resource-group {group} "
                        f"--server-name {name} --name password_encryption --value {SCRAM}"
                    ),
                    sql_comment("self-managed PostgreSQL, as a superuser (one statement each):"),
                    alter_system("password_encryption", SCRAM),
                    sql_comment(
                        "existing MD5 verifiers stay until each role's password is set again "
                        "(ALTER ROLE ... PASSWORD ...); rotate the app roles' passwords"
                    ),
                ]
            ),
        )


RULES = [PasswordEncryption]
