"""Which databases a role can log in to, worked out per source of CONNECT, not per role.

A role can log in to a database that lets connections in when PUBLIC holds CONNECT
on it, or when the role itself, or a group it inherits (``grants.can_connect``: a
path without INHERIT never opens a session), holds CONNECT there or owns it.

On a big shared server asking that of every role about every database is the
expensive way round: 10,000 roles by 1,000 databases is ten million questions, and
most answers are the same fact over and over. Where 500 databases let PUBLIC in,
that is one fact about PUBLIC; where a group holds CONNECT on 200 databases, it is
one fact about the group, shared by every member. So the databases each source
opens are gathered once (PUBLIC's once per server, each group's once, each set of
groups' once), and a role's reach is its groups' set plus what it holds itself: the
first few, sorted, and how many, never a list per role of everything. What PUBLIC
opens is counted, not listed with each role: it is the same for all of them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import groupby, islice

from pgwarden.access.cached import cached_property
from pgwarden.access.graph import RoleGraph
from pgwarden.model.snapshot import Database


@dataclass(frozen=True)
class Reach:
    """The databases one role can log in to now.

    ``first``: the first ``limit`` names, sorted, of those it reaches by its own grants,
    its ownership or its groups (and would still reach were PUBLIC's CONNECT revoked);
    ``total``: how many of those; ``through_public``: how many let every role in
    through PUBLIC (the same for every role: one fact about PUBLIC, counted, not
    listed per role).
    """

    first: tuple[str, ...]
    total: int
    through_public: int


@dataclass(frozen=True)
class _Opened:
    """The databases some sources of CONNECT open, sorted and as a set."""

    names: tuple[str, ...]
    members: frozenset[str]


class DatabaseReach:
    """The databases each role can log in to, from the sources of CONNECT on the server."""

    def __init__(self, graph: RoleGraph, databases: Mapping[str, Database]) -> None:
        self._graph = graph
        self._databases = databases
        self._by_groups: dict[frozenset[str], _Opened] = {}

    @cached_property
    def _sources(self) -> dict[str | None, frozenset[str]]:
        """The databases (accepting connections) each grantee holds CONNECT on, or owns.

        The key None is PUBLIC.
        """
        found: dict[str | None, set[str]] = {}
        for name, db in self._databases.items():
            if not db.allow_connections:
                continue
            found.setdefault(db.owner, set()).add(name)
            for item in db.acl:
                if "CONNECT" in item.privileges:
                    found.setdefault(item.grantee, set()).add(name)
        return {grantee: frozenset(names) for grantee, names in found.items()}

    @cached_property
    def through_public(self) -> int:
        """How many databases every role may log in to, through PUBLIC."""
        return len(self._sources.get(None, ()))

    def _groups(self, groups: frozenset[str]) -> _Opened:
        """What ``groups`` open together.

        Members of the same groups share one answer: on a big server thousands of
        logins sit in the same few groups.
        """
        cached = self._by_groups.get(groups)
        if cached is None:
            sources = self._sources
            members = frozenset().union(*(sources.get(g, frozenset()) for g in groups))
            cached = self._by_groups[groups] = _Opened(tuple(sorted(members)), members)
        return cached

    def of(self, role: str, limit: int, inherited: frozenset[str] | None = None) -> Reach:
        """The databases ``role`` can log in to other than through PUBLIC: the first
        ``limit`` and how many; and how many PUBLIC opens to every role.

        ``inherited``: the groups ``role`` inherits (``RoleGraph.usable_groups``), when
        the caller has them already.
        """
        # Only groups reached by inheritance count at login (grants.can_connect).
        groups = self._graph.usable_groups(role)[0] if inherited is None else inherited
        opened = self._groups(groups)
        if role not in self._sources:
            # Nothing of its own (most roles): its groups' answer, already sorted.
            return Reach(opened.names[:limit], len(opened.members), self.through_public)
        own = sorted(self._sources[role])
        extra = [d for d in own if d not in opened.members]
        merged = heapq.merge(opened.names, own)
        return Reach(
            first=tuple(islice(_distinct(merged), limit)),
            total=len(opened.members) + len(extra),
            through_public=self.through_public,
        )


def _distinct(names: Iterable[str]) -> Iterator[str]:
    """Sorted ``names`` without repeats."""
    return (name for name, _same in groupby(names))
