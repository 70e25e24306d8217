"""Who can call a SECURITY DEFINER routine, asked per source of EXECUTE, never per role.

A routine's callers are the principals (app roles, logins of no app) that can connect
to its database and EXECUTE it, its owner aside. An explicit grant reaches the grantee
and the roles that can use it: a walk of the role graph, bounded by the grant. PUBLIC's
EXECUTE (every routine's default) reaches everyone who can connect: on a database that
lets PUBLIC connect, that is nearly every role of the server, so it is one fact about
the database, counted and listed lazily in name order, never a list built per routine.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from pgwarden.access.grants import can_connect
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.snapshot import Database

PUBLIC_EXECUTE = "PUBLIC EXECUTE"


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


@dataclass(frozen=True)
class Callers:
    """Who can call one routine: ``granted`` (role to how, name order) through explicit
    grants, and with ``public`` everyone in ``connecting`` through PUBLIC EXECUTE."""

    granted: dict[str, str]
    public: bool
    connecting: Connecting
    owner: str

    def how(self, role: str) -> str | None:
        """How ``role`` may call the routine, or None when it may not."""
        if role == self.owner:
            return None
        found = self.granted.get(role)
        if found is None and self.public and role in self.connecting:
            return PUBLIC_EXECUTE
        return found

    def outside(self, app: str | None) -> CallerSet:
        """The callers that are not roles of ``app`` (all of them when None)."""
        return CallerSet(self, app)

    def __bool__(self) -> bool:
        return bool(self.outside(None))


@dataclass(frozen=True)
class CallerSet:
    """The callers of a routine outside one app: counted, tested and listed in name
    order without building the list (``first``)."""

    callers: Callers
    app: str | None

    def __contains__(self, role: str) -> bool:
        return self.callers.how(role) is not None and (
            self.app is None or self.callers.connecting.tenancy.role_apps.get(role) != self.app
        )

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None

    def __iter__(self) -> Iterator[str]:
        """The callers, in name order, one at a time."""
        callers = self.callers
        names: Iterable[str] = callers.granted
        if callers.public:
            names = heapq.merge(callers.granted, callers.connecting)
        last = None
        for role in names:
            if role != last and role in self:
                yield role
            last = role

    def __len__(self) -> int:
        callers = self.callers
        tenancy = callers.connecting.tenancy
        if not callers.public:
            return sum(1 for role in callers.granted if role in self)
        # Everyone who can connect, the granted ones who cannot (none, in practice),
        # less the owner and the roles of the app left out: each a bounded count.
        total = len(callers.connecting) + sum(
            1 for role in callers.granted if role not in callers.connecting
        )
        if callers.owner in callers.connecting or callers.owner in callers.granted:
            total -= 1
        if self.app is not None:
            total -= sum(
                1
                for role in tenancy.app_roles(self.app)
                if role != callers.owner and callers.how(role) is not None
            )
        return total

    def first(self, limit: int) -> list[tuple[str, str]]:
        """The first ``limit`` callers in name order, each with how it may call."""
        how = self.callers.how
        return [(role, how(role) or "") for role in islice(self, limit)]
