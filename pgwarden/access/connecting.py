"""Who can connect to a database: one fact per database, counted, tested and listed lazily.

On a database that lets PUBLIC connect, that is nearly every principal of the server:
rules that ask "who can reach this" for each routine, foreign server or object in it
(PUBLIC's EXECUTE, a mapping FOR PUBLIC) use this instead of a list built each time,
so their work follows the objects, not roles times objects.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field

from pgwarden.access.tenancy import Tenancy
from pgwarden.model.context import BuiltInKey
from pgwarden.model.snapshot import Database

_CONNECTING = BuiltInKey("connecting")


@dataclass
class Connecting:
    """The principals that can connect to one database: its app's own roles that can,
    and ``Tenancy.foreign_connecting``'s, counted, tested and listed lazily."""

    tenancy: Tenancy
    db: Database
    app: str | None = field(init=False)
    own: tuple[str, ...] = field(init=False)
    # ``own`` in the tenancy map's order (the order scripts grant them in).
    own_in_map_order: tuple[str, ...] = field(init=False)
    # ``own`` to test membership in: asked once per app role per routine or mapping.
    _own_set: frozenset[str] = field(init=False)
    _foreign_count: int = field(init=False)
    # The foreign ones as a set, where they are a bounded list (no PUBLIC CONNECT).
    _listed: frozenset[str] | None = field(init=False)

    @classmethod
    def of(cls, tenancy: Tenancy, db: Database) -> Connecting:
        """The one for ``db`` in this evaluation of its server (made once, then shared)."""
        cache: dict[str, Connecting] = tenancy.context.analysis(_CONNECTING, tenancy, dict)
        found = cache.get(db.name)
        if found is None:
            found = cache[db.name] = cls(tenancy, db)
        return found

    def __post_init__(self) -> None:
        tenancy, db = self.tenancy, self.db
        self.app = tenancy.app_databases.get(db.name)
        able = tenancy.able_to_connect(tenancy.app_roles(self.app or ""), db)
        self.own_in_map_order, self.own, self._own_set = able.ordered, able.sorted, able.members
        foreign, self._foreign_count = tenancy.foreign_connecting(db)
        self._listed = None if db.public_connect else frozenset(foreign)

    @property
    def key(self) -> tuple[object, ...]:
        """Equal for databases the same principals can connect to (``in`` answers the
        same): an app's tenant databases with one ACL share it, and what a routine's
        grants reach in one of them is what they reach in each."""
        public = self._listed is None and self.db.allow_connections
        return (self.app, self._own_set, self._listed, public)

    def __len__(self) -> int:
        return len(self.own) + self._foreign_count

    def __contains__(self, role: str) -> bool:
        if role in self._own_set:
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
        return heapq.merge(self.own, self.foreign())

    def foreign(self) -> Iterator[str]:
        """Those of another app than the database's (or of none), in name order."""
        foreign, _count = self.tenancy.foreign_connecting(self.db)
        return iter(foreign)

    def own_count_besides(self, role: str) -> int:
        """How many of the database's app's roles can connect, ``role`` (a routine's
        owner, say) not counted."""
        return len(self.own) - (role in self._own_set)
