"""PGW-AUTH-002: Microsoft Entra authentication on the server (Azure ARM)."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import AZURE_POLICY, NIST_800_53
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import server_args
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict


class EntraAuthentication(Rule):
    """Entra ID authentication is off, or has no administrator, while the policy requires it.

    Microsoft Entra logins give each person and workload its own identity, with
    conditional access, MFA and central revocation, instead of shared passwords that
    outlive the people who know them. Entra authentication without an Entra
    administrator cannot be used: nobody can create Entra roles.

    Violation: ``authConfig.activeDirectoryAuth`` is not Enabled, or the server has no
    Microsoft Entra administrator, while ``require_entra_auth`` is true.

    Fix: az postgres flexible-server update … --microsoft-entra-auth Enabled (older
    CLI: --active-directory-auth Enabled), then az postgres flexible-server
    microsoft-entra-admin create … --display-name NAME --object-id OBJECT_ID.
    """

    id = "PGW-AUTH-002"
    severity = "medium"
    requires = (Section.AZURE_SERVER, Section.AZURE_ADMINISTRATORS)
    controls = (
        Control(AZURE_POLICY, "ce39a96d-bf09-4b60-8c32-e85d52abea0f"),
        Control(NIST_800_53, "IA-2"),
    )

    def not_applicable(self, context: ServerContext) -> str | None:
        if context.policy.require_entra_auth:
            return None
        return "the policy does not require Entra authentication (require_entra_auth = false)"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        if self.not_applicable(context) is not None:
            return
        azure = snapshot.azure
        assert azure is not None and azure.server is not None and azure.administrators is not None
        server = azure.server
        enabled = (server.entra_auth or "").lower() == "enabled"
        admins = [a.principal_name or a.object_id or "?" for a in azure.administrators]
        if enabled and admins:
            if context.include_passed:
                yield Verdict(
                    resource=f"server/{context.name}",
                    status="pass",
                    message=f"server {server.name!r} accepts Microsoft Entra logins and has "
                    f"{len(admins)} Entra administrator(s)",
                    evidence={
                        "active_directory_auth": server.entra_auth,
                        "password_auth": server.password_auth,
                        "entra_administrators": admins,
                    },
                )
            return
        problems = []
        commands = []
        if not enabled:
            problems.append("Microsoft Entra authentication is off")
            commands.append(
                f"az postgres flexible-server update {server_args(snapshot, context)} "
                "--microsoft-entra-auth Enabled"
            )
        if not admins:
            problems.append("the server has no Microsoft Entra administrator")
            commands.append(
                "az postgres flexible-server microsoft-entra-admin create "
                f"{server_args(snapshot, context, name_flag='--server-name')} "
                "--display-name GROUP_NAME --object-id GROUP_OBJECT_ID --type Group"
            )
        yield Verdict(
            resource=f"server/{context.name}",
            message=f"server {server.name!r}: {' and '.join(problems)}; the policy requires "
            "Entra authentication",
            evidence={
                "active_directory_auth": server.entra_auth,
                "password_auth": server.password_auth,
                "entra_administrators": admins,
            },
            remediation="\n".join(commands),
        )


RULES = [EntraAuthentication]
