"""Routines that run with their owner's privileges: ``SECURITY DEFINER``."""

from __future__ import annotations

from pgwarden.model.acl import AclItem
from pgwarden.model.frozen import Frozen


class DefinerFunction(Frozen):
    """A ``SECURITY DEFINER`` routine (trigger functions excepted: nobody calls them).

    ``acl`` is effective: a NULL ``proacl`` (PUBLIC and the owner may EXECUTE) is made
    explicit. ``search_path`` is the value the routine pins with ``SET search_path``
    (``proconfig``), None when it runs with its caller's.
    """

    schema_name: str
    name: str
    arguments: str
    kind: str
    owner: str
    acl: tuple[AclItem, ...]
    search_path: str | None = None
