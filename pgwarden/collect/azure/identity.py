"""Who pgwarden signed in to Azure as, for the evidence of who ran a scan.

Read from the claims of the access token the credential issues for ARM (the token
the collectors use anyway, so no extra sign-in): tenant, object id, application id,
name and kind. The token itself is never kept, logged or shown; its signature is not
checked because nothing is decided on these claims, they are only recorded. A token
that is not a JWT (a test credential) gives no identity, not an error.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.model.snapshot import AzureIdentity

log = logging.getLogger(__name__)


def signed_in_identity(session: AzureSession) -> AzureIdentity | None:
    """The identity behind the session's credential, or None when it cannot be told."""
    try:
        token = session.credential.get_token(session.cloud.arm_scope).token
    except Exception as exc:  # the collectors report sign-in failures; this is a record only
        log.debug("Azure identity not recorded: %s", type(exc).__name__)
        return None
    return identity_of_token(token)


def identity_of_token(token: str) -> AzureIdentity | None:
    """The identity claims of a JWT access token, or None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(payload, dict):
        return None
    identity = AzureIdentity(
        tenant_id=_claim(payload, "tid"),
        object_id=_claim(payload, "oid"),
        app_id=_claim(payload, "appid", "azp"),
        name=_claim(payload, "upn", "preferred_username", "unique_name", "app_displayname"),
        kind=_claim(payload, "idtyp"),
    )
    return identity if identity.object_id or identity.app_id else None


def _claim(payload: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value
    return None
