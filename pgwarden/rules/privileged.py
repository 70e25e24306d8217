"""Which roles are privileged: what acting as one hands over, beyond any one app.

Shared by the rules that ask "whose identity does this run as?": a SECURITY DEFINER
routine runs as its owner, a user mapping logs in as its remote user. A privileged
role is a superuser, the server's admin role, ``azure_pg_admin`` or a role that can
use either (Azure's administrators), a role with CREATEROLE, REPLICATION or BYPASSRLS,
or one that inherits a high-privilege predefined role (``pg_read_all_data``, ...).
Attributes are never inherited, and a SECURITY DEFINER routine cannot ``SET ROLE``:
only the role's own attributes and what it inherits count.
"""

from __future__ import annotations

from pgwarden.access.tenancy import Tenancy
from pgwarden.rules.roles._privileged import ATTRIBUTES, group_risk, held_attributes

# Attributes that reach past one app (CREATEDB only adds databases: ROLE-001's).
_POWERFUL_ATTRIBUTES = ("superuser", "createrole", "replication", "bypassrls")


def privilege_of(tenancy: Tenancy, role: str) -> str | None:
    """Why acting as ``role`` reaches past any one app, or None when it does not."""
    found = tenancy.roles.get(role)
    if found is not None and found.bootstrap_superuser:
        return "the bootstrap superuser: bypasses every permission check on the server"
    own = group_risk(tenancy, role)
    if own is not None:
        return own
    for attribute in held_attributes(found):
        if attribute in _POWERFUL_ATTRIBUTES:
            return f"has {attribute.upper()}: {ATTRIBUTES[attribute]}"
    for holder, path in tenancy.graph.holders(role).items():
        if holder == role or path.mode == "set role":
            continue
        risk = group_risk(tenancy, holder)
        if risk is not None:
            return f"inherits {holder!r}: {risk}"
    return None
