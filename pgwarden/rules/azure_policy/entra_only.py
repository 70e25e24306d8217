"""PGW-AZ-001: Microsoft Entra-only authentication (password logins disabled)."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import AZURE_POLICY, NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import server_args
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict


class PasswordAuthenticationOn(Rule):
    """Password authentication is on while the policy asks for Microsoft Entra-only logins.

    Every PostgreSQL password is a shared secret that outlives the people and pipelines
    that know it, and that no conditional access, MFA or central revocation covers.
    With Microsoft Entra-only authentication each login is an Entra identity whose
    tokens expire within the hour. Checked only when ``require_entra_only_auth`` is
    true: the seed's apps still log in with passwords.

    Violation: ``authConfig.activeDirectoryAuth`` is not Enabled or
    ``authConfig.passwordAuth`` is not Disabled, while ``require_entra_only_auth`` is
    true.

    Fix: move every app to an Entra identity first, then az postgres flexible-server
    update … --microsoft-entra-auth Enabled --password-auth Disabled.
    """

    id = "PGW-AZ-001"
    severity = "medium"
    controls = (
        Control(AZURE_POLICY, "fa498b91-8a7e-4710-9578-da944c68d1fe"),
        Control(NIST_800_53, "IA-2"),
    )
    requires = (Section.AZURE_SERVER,)
    policy_switch = "require_entra_only_auth"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        azure = snapshot.azure
        assert azure is not None and azure.server is not None
        server = azure.server
        entra = (server.entra_auth or "").lower() == "enabled"
        passwords_off = (server.password_auth or "").lower() == "disabled"
        if entra and passwords_off:
            return
        problems = []
        if not entra:
            problems.append("Microsoft Entra authentication is off")
        if not passwords_off:
            problems.append("password authentication is on")
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"server {server.name!r}: {' and '.join(problems)}; the policy requires "
            "Microsoft Entra-only authentication",
            evidence={
                "active_directory_auth": server.entra_auth,
                "password_auth": server.password_auth,
            },
            remediation=f"az postgres flexible-server update {server_args(snapshot, context)} "
            "--microsoft-entra-auth Enabled --password-auth Disabled",
        )
