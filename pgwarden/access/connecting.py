"""Who can connect to a database: one fact per database, counted, tested and listed lazily.

On a database that lets PUBLIC connect, that is nearly every principal of the server:
rules that ask "who can reach this" for each routine, foreign server or object in it
(PUBLIC's EXECUTE, a mapping FOR PUBLIC) use this instead of a list built each time,
so their work follows the objects, not roles times objects.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pgwarden.access.grants import can_connect
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.snapshot import Database


@dataclass
class Connecting:
    """The principals that can connect to one database (of app ``app``): counted, tested
    and listed lazily, the same for every routine in it."""

    tenancy: Tenancy
    db: Database
    app: str | None
    own: tuple[str, ...] = field(init=False)
    _listed: frozenset[str] | None = field(init=False, default=None)
    _foreign: tuple[str, ...] = field(init=False, default=())
    _foreign_count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        tenancy, db = self.tenancy, self.db
        self.own = tuple(
            sorted(
                r for r in tenancy.app_roles(self.app or "") if can_connect(db, r, tenancy.graph)
            )
        )
        if db.allow_connections and not db.public_connect:
            # Only the users of its CONNECT grantees and owner: a bounded list.
            found, _count = tenancy.foreign_connecting(db)
            self._foreign = tuple(found)
            self._foreign_count = len(self._foreign)
            self._listed = frozenset(self._foreign)
        elif db.allow_connections:
            self._foreign_count = tenancy.count_foreign_principals(db.name)

    def __len__(self) -> int:
        return len(self.own) + self._foreign_count

    def __contains__(self, role: str) -> bool:
        if role in self.own:
            return True
        if self._listed is not None:
            return role in self._listed
        if not self.db.allow_connections:
            return False
        # PUBLIC may connect: every principal of another app than the database's.
        tenancy = self.tenancy
        return tenancy.is_principal(role) and tenancy.role_apps.get(role) != self.app

    def __iter__(self) -> Iterator[str]:
        """Every one, in name order, one at a time."""
        if self._listed is not None or not self.db.allow_connections:
            foreign: Iterable[str] = self._foreign
        else:
            foreign = self.tenancy.foreign_principals(self.db.name)
        return heapq.merge(self.own, foreign)
