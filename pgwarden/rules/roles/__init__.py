"""PGW-ROLE: what the apps' roles are, what they belong to, and who else logs in."""

from __future__ import annotations

from pgwarden.rules.roles.attributes import PrivilegedAppRole
from pgwarden.rules.roles.connection_limits import ConnectionLimits
from pgwarden.rules.roles.logins import UnmappedLogin
from pgwarden.rules.roles.memberships import AppRoleInPrivilegedRole

RULES = [PrivilegedAppRole, AppRoleInPrivilegedRole, ConnectionLimits, UnmappedLogin]
