"""PostgreSQL ACLs read from their text form (``aclitem::text``).

The collector asks for ``acl::text[]`` rather than exploding ACLs server-side: in a
fresh backend the per-database catalog query then plans and runs in a third of the
time, and the same item text recurs across databases (``app_owner=arwdDxt/app_owner``
in every table of an app), so each distinct item is parsed once and its ``AclItem``
shared. The grammar is PostgreSQL's ``aclitemout``: ``grantee=privileges/grantor``, an
empty grantee meaning PUBLIC, each privilege one letter followed by ``*`` when it is
grantable; a name that is not only letters, digits and ``_`` is double-quoted, with
``"`` doubled inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from pgwarden.model.snapshot import AclItem

# aclitemout's letters (ACL_ALL_RIGHTS_STR) and the names aclexplode gives them.
PRIVILEGE_NAMES = {
    "a": "INSERT",
    "r": "SELECT",
    "w": "UPDATE",
    "d": "DELETE",
    "D": "TRUNCATE",
    "x": "REFERENCES",
    "t": "TRIGGER",
    "X": "EXECUTE",
    "U": "USAGE",
    "C": "CREATE",
    "T": "TEMPORARY",
    "c": "CONNECT",
    "s": "SET",
    "A": "ALTER SYSTEM",
    "m": "MAINTAIN",
}


class AclSyntaxError(ValueError):
    """An ACL item the collector cannot read (never guessed at: the caller records a gap)."""


def parse_acl(items: Iterable[str] | None) -> tuple[AclItem, ...]:
    """The items of one ``aclitem[]`` in text form; None (no ACL) gives no items."""
    return tuple(parse_acl_item(item) for item in items or ())


# A role name ``aclitemout`` writes as it is (``putid`` quotes any other; a letter
# outside ASCII may be left bare or quoted, by the server's locale: not matched here).
_BARE_NAME = re.compile(r"[A-Za-z0-9_]+")


def grantee_prefix(role: str) -> str | None:
    """What every item granted to ``role`` starts with (``role=``), where its name is
    written bare; None where it may be quoted (such items are told by parsing)."""
    return f"{role}=" if _BARE_NAME.fullmatch(role) else None


@lru_cache(maxsize=65_536)
def parse_acl_item(text: str) -> AclItem:
    """One ``grantee=privileges/grantor`` item (cached: identical items share one object)."""
    grantee, rest = _name(text, 0, "=")
    privileges, grantable = [], []
    end = rest
    while end < len(text) and text[end] != "/":
        letter = text[end]
        name = PRIVILEGE_NAMES.get(letter)
        if name is None:
            raise AclSyntaxError(f"unknown privilege {letter!r} in ACL item {text!r}")
        privileges.append(name)
        end += 1
        if end < len(text) and text[end] == "*":
            grantable.append(name)
            end += 1
    if end >= len(text):
        raise AclSyntaxError(f"ACL item {text!r} names no grantor")
    grantor, stop = _name(text, end + 1, "")
    if stop != len(text) or not grantor:
        raise AclSyntaxError(f"cannot read ACL item {text!r}")
    return AclItem(
        grantee=grantee or None,
        grantor=grantor,
        privileges=tuple(sorted(privileges)),
        grantable=tuple(sorted(grantable)),
    )


def _name(text: str, start: int, stop: str) -> tuple[str, int]:
    """The role name at ``start`` (quoted or bare) and the index just past ``stop``."""
    if text.startswith('"', start):
        chars, index = [], start + 1
        while True:
            quote = text.find('"', index)
            if quote < 0:
                raise AclSyntaxError(f"unterminated quoted name in ACL item {text!r}")
            chars.append(text[index:quote])
            if text.startswith('"', quote + 1):
                chars.append('"')
                index = quote + 2
                continue
            end = quote + 1
            break
        name = "".join(chars)
    else:
        end = text.find(stop, start) if stop else len(text)
        if end < 0:
            raise AclSyntaxError(f"cannot read ACL item {text!r}")
        name = text[start:end]
    if stop:
        if not text.startswith(stop, end):
            raise AclSyntaxError(f"cannot read ACL item {text!r}")
        end += len(stop)
    return name, end
