"""Privilege names and ACL items, in PostgreSQL's order and as PostgreSQL prints them."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from pgwarden.model.snapshot import AclItem

# aclitem's one-letter privilege codes, in the order aclitemout prints them.
_ACL_LETTERS = {
    "INSERT": "a",
    "SELECT": "r",
    "UPDATE": "w",
    "DELETE": "d",
    "TRUNCATE": "D",
    "REFERENCES": "x",
    "TRIGGER": "t",
    "EXECUTE": "X",
    "USAGE": "U",
    "CREATE": "C",
    "TEMPORARY": "T",
    "CONNECT": "c",
    "SET": "s",
    "ALTER SYSTEM": "A",
    "MAINTAIN": "m",
}
_ACL_ORDER = {name: index for index, name in enumerate(_ACL_LETTERS)}


def sort_privileges(privileges: Iterable[str]) -> tuple[str, ...]:
    """Privilege names in PostgreSQL's own order (as ``\\dp`` shows them)."""
    return _sorted_privileges(privileges if isinstance(privileges, tuple) else tuple(privileges))


@lru_cache(maxsize=4096)
def _sorted_privileges(privileges: tuple[str, ...]) -> tuple[str, ...]:
    # Called for every ACL item a rule looks at: the few distinct lists are cached.
    return tuple(sorted(set(privileges), key=lambda p: (_ACL_ORDER.get(p, 99), p)))


@lru_cache(maxsize=16384)
def _acl_name(name: str) -> str:
    # aclitemout's putid(): names with anything but letters, digits and _ are quoted.
    if name and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name):
        return name
    return '"' + name.replace('"', '""') + '"'


def acl_text(item: AclItem) -> str:
    """An ACL item as PostgreSQL prints it (``grantee=privileges/grantor``)."""
    grantee = "" if item.grantee is None else _acl_name(item.grantee)
    return f"{grantee}={_acl_letters(item.privileges, item.grantable)}/{_acl_name(item.grantor)}"


@lru_cache(maxsize=4096)
def _acl_letters(privileges: tuple[str, ...], grantable: tuple[str, ...]) -> str:
    # Every ACL shown is printed whole, item by item: the few distinct lists are cached.
    return "".join(
        _ACL_LETTERS.get(p, "?") + ("*" if p in grantable else "")
        for p in sort_privileges(privileges)
    )
