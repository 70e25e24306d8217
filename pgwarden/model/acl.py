"""An ACL item as the snapshot holds it: one grantee's privileges on one object."""

from __future__ import annotations

from pgwarden.model.frozen import Frozen


class AclItem(Frozen):
    """One grantee's privileges from an ACL; ``grantee`` None means PUBLIC."""

    grantee: str | None
    grantor: str
    privileges: tuple[str, ...]
    grantable: tuple[str, ...] = ()

    @property
    def is_public(self) -> bool:
        return self.grantee is None
