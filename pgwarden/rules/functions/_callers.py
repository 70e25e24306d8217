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
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

from pgwarden.access.cached import cached_property
from pgwarden.access.connecting import Connecting

PUBLIC_EXECUTE = "PUBLIC EXECUTE"


@dataclass(eq=False)
class Granted:
    """Who a routine's explicit grants of EXECUTE reach: ``how`` each role may call it
    (role to how, name order).

    Made once for every routine whose grants and owner are alike, in databases the same
    principals can connect to (``Connecting.key``): an app's thousand tenant databases,
    each holding the same routines granted to the app's group of thousands of logins,
    share one. What is asked of it per app (the roles of other apps) is read once too.
    """

    how: dict[str, str]
    role_apps: Mapping[str, str]
    _outside: dict[str, list[str]] = field(default_factory=dict)

    def outside(self, app: str | None) -> Collection[str]:
        """The roles reached that are not of ``app`` (all of them when None), in name
        order."""
        if app is None:
            return self.how.keys()
        found = self._outside.get(app)
        if found is None:
            role_apps = self.role_apps
            found = self._outside[app] = [r for r in self.how if role_apps.get(r) != app]
        return found


@dataclass(frozen=True)
class Callers:
    """Who can call one routine: ``granted`` through explicit grants, and with
    ``public`` everyone in ``connecting`` through PUBLIC EXECUTE.

    Every role in ``granted`` is in ``connecting`` (a grant to a role that cannot
    connect calls nothing), and the owner is not: ``_definer._callers`` keeps only
    those."""

    granted: Granted
    public: bool
    connecting: Connecting
    owner: str

    def how(self, role: str) -> str | None:
        """How ``role`` may call the routine, or None when it may not."""
        if role == self.owner:
            return None
        found = self.granted.how.get(role)
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
        # The granted roles of ``app`` are passed over unread, as are the database's
        # own through PUBLIC outside its app: an app of thousands of roles has a
        # routine in each of its thousand databases.
        names: Iterable[str] = callers.granted.outside(self.app)
        if callers.public:
            connecting = callers.connecting
            names = heapq.merge(
                names, connecting.foreign() if self.app == connecting.app else connecting
            )
        last = None
        for role in names:
            if role != last and role in self:
                yield role
            last = role

    def __len__(self) -> int:
        return self._count

    @cached_property
    def _count(self) -> int:
        # Asked by the evidence and the verdict of each finding: counted once.
        callers = self.callers
        tenancy = callers.connecting.tenancy
        if not callers.public:
            return len(callers.granted.outside(self.app))
        # Everyone who can connect (the granted roles among them), less the owner and
        # the roles of the app left out: each a bounded count.
        total = len(callers.connecting)
        if callers.owner in callers.connecting:  # (``granted`` never holds the owner)
            total -= 1
        if self.app is not None and self.app == callers.connecting.app:
            # The database's app's callers are its roles that can connect (the granted
            # ones among them), less the owner: counted, not walked.
            connecting = callers.connecting
            total -= connecting.own_count_besides(callers.owner)
        elif self.app is not None:
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
