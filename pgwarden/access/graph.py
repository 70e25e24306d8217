"""The role graph: which roles can use which roles' privileges, and along which grants.

PostgreSQL semantics, versions 11-17:

* A member uses a group role's privileges without ``SET ROLE`` when every grant on
  the path has INHERIT (PG16+: per grant ``inherit_option``; before 16: the member's
  ``rolinherit``).
* A member may ``SET ROLE`` to a group when every grant on the path has SET (PG16+:
  ``set_option``; before 16 always). After ``SET ROLE`` it holds that role's own
  inherited privileges too, so a usable path is some SET grants followed by some
  INHERIT grants. NOINHERIT membership is still access: it is reported, and the
  evidence says ``SET ROLE`` is needed.
* A grant with ADMIN only (PG16's ``createrole_self_grant``: no INHERIT, no SET) gives
  no access to the group's privileges: it is administrative.
* On PG16+ one member may hold the same role through several grants (one per
  grantor); the options of all of them add up, and each must be revoked.
* Role attributes (SUPERUSER, CREATEDB, ...) are never inherited: only ``SET ROLE``
  confers them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Literal

from pgwarden.access.cached import cached_property
from pgwarden.model.evidence import MAX_LISTED
from pgwarden.model.snapshot import Membership

Mode = Literal["direct", "inherit", "set role"]

# server_version_num of PostgreSQL 16: memberships gain per-grant options and grantors.
PG16 = 160000
# Enough to show an auditor every way in on real role graphs, bounded so a
# pathological graph cannot make a rule explode.
MAX_PATHS = 16
_MAX_STEPS = 20_000


@dataclass(frozen=True)
class RolePath:
    """How ``path[0]`` comes to act with the privileges of ``path[-1]``.

    ``set_role`` is the role to ``SET ROLE`` to when the path needs it (mode
    ``set role``): the grants up to it lack INHERIT, the rest have it.
    """

    path: tuple[str, ...]
    mode: Mode
    set_role: str | None = None

    @property
    def holder(self) -> str:
        return self.path[-1]

    @property
    def member(self) -> str:
        return self.path[0]

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """The membership grants of the path as (member, role) pairs."""
        return tuple(pairwise(self.path))

    @property
    def shown(self) -> tuple[str, ...]:
        """The roles a finding shows: every role of a path of up to ``MAX_LISTED``;
        of a longer one, the first and the last ``MAX_LISTED // 2`` (where it starts,
        and the grants that end in the privilege)."""
        path = self.path
        if len(path) <= MAX_LISTED:
            return path
        half = MAX_LISTED // 2
        return (*path[:half], *path[-half:])

    def describe(self) -> str:
        """The path as a message or a comment reads it, a long one with its middle
        counted: ``a → … 180 more roles … → z``."""
        shown = self.shown
        if len(shown) == len(self.path):
            return " → ".join(shown)
        half = len(shown) // 2
        middle = f"… {len(self.path) - len(shown)} more roles …"
        return " → ".join((*shown[:half], middle, *shown[half:]))

    def roles_evidence(self) -> dict[str, object]:
        """The path's roles as findings show them: ``path`` (``shown``), and
        ``path_total``, the number of roles, when some are left out."""
        roles: dict[str, object] = {"path": list(self.shown)}
        if len(self.path) > MAX_LISTED:
            roles["path_total"] = len(self.path)
        return roles

    def evidence(self) -> dict[str, object]:
        """The path as findings show it: its roles (``roles_evidence``) and mode.

        Made once per path and shared by every finding that shows it (on a chain of
        apps' groups, one path is in three rules' findings): safe because a finding's
        evidence is never changed once made.
        """
        return self._evidence

    @cached_property
    def _evidence(self) -> dict[str, object]:
        shown: dict[str, object] = {**self.roles_evidence(), "mode": self.mode}
        if self.set_role:
            shown["set_role"] = self.set_role
        return shown


def own_grant(paths: tuple[RolePath, ...]) -> bool:
    """Whether ``paths`` are one path of one membership grant: the role's own membership
    in the holder (most members of most groups), which the evidence need not spell out
    and a remediation cuts as it is."""
    return len(paths) == 1 and len(paths[0].path) == 2


class RoleGraph:
    """Direct membership grants of one server, with closure queries."""

    def __init__(self, memberships: Iterable[Membership]) -> None:
        self._grants: dict[tuple[str, str], list[Membership]] = {}
        # The options of one pair's grants add up. They are read here, in the
        # snapshot's order: visited in sorted order, the grants (tens of thousands of
        # objects) are read all over memory.
        self._inherit_edges: set[tuple[str, str]] = set()
        self._set_edges: set[tuple[str, str]] = set()
        for grant in memberships:
            pair = (grant.member, grant.role)
            self._grants.setdefault(pair, []).append(grant)
            if grant.inherit_option:
                self._inherit_edges.add(pair)
            if grant.set_option:
                self._set_edges.add(pair)
        self._any: dict[str, list[str]] = {}
        self._any_from: dict[str, list[str]] = {}
        # Members with a grant lacking INHERIT or SET: only their lists differ by mode.
        partial: set[str] = set()
        for pair in sorted(self._grants):
            member, role = pair
            self._any.setdefault(member, []).append(role)
            self._any_from.setdefault(role, []).append(member)
            if pair not in self._inherit_edges or pair not in self._set_edges:
                partial.add(member)
        # The lists are shared between modes wherever they are the same: on a big
        # server there are tens of thousands, and a copy per mode was most of the cost
        # of building the graph (fresh memory). Nothing changes them once built.
        self._inherit: dict[str, list[str]]
        self._set: dict[str, list[str]]
        self._usable: dict[str, list[str]]
        self._reverse_inherit: dict[str, list[str]]
        self._reverse_set: dict[str, list[str]]
        if partial:
            self._inherit = self._by_mode(self._any, partial, self._inherit_edges)
            self._set = self._by_mode(self._any, partial, self._set_edges)
            self._usable = self._by_mode(self._any, partial, self._inherit_edges | self._set_edges)
            self._reverse_inherit = self._reversed(self._inherit)
            self._reverse_set = self._reversed(self._set)
        else:
            # Every grant has INHERIT and SET (PostgreSQL's default): one map for all.
            self._inherit = self._set = self._usable = self._any
            self._reverse_inherit = self._reverse_set = self._any_from
        self.names: frozenset[str] = frozenset(self._any.keys() | self._any_from.keys())
        # Members with a grant that has SET but not INHERIT: only through them can
        # SET ROLE reach further than inheritance does.
        self._set_only: frozenset[str] = frozenset(
            member for member, _role in self._set_edges - self._inherit_edges
        )
        # Every grant that gives access inherits (PostgreSQL's default): no privilege
        # held through membership is ever one SET ROLE away.
        self.always_inherits: bool = not self._set_only
        self._holders: dict[str, dict[str, RolePath]] = {}
        self._distances: dict[str, dict[str, int]] = {}
        self._single_steps: dict[str, dict[str, str]] = {}
        self._single_ways: dict[str, dict[str, tuple[bool, RolePath | None]]] = {}
        self._grant_row_counts: dict[tuple[str, str], int] = {}
        self._grant_rows_evidence: dict[tuple[str, str], tuple[dict[str, object], ...]] = {}
        self._reverse_usable: dict[str, list[str]] | None = None
        self._settable: dict[str, dict[str, RolePath]] = {}
        self._paths: dict[tuple[str, str, int], tuple[RolePath, ...]] = {}
        self._user_names: dict[str, frozenset[str]] = {}

    @staticmethod
    def _by_mode(
        any_to: dict[str, list[str]], partial: set[str], edges: set[tuple[str, str]]
    ) -> dict[str, list[str]]:
        """``any_to`` cut to ``edges``; the list of a member not ``partial`` is kept whole."""
        found: dict[str, list[str]] = {}
        for member, roles in any_to.items():
            if member not in partial:
                found[member] = roles
                continue
            kept = [role for role in roles if (member, role) in edges]
            if kept:
                found[member] = kept
        return found

    @staticmethod
    def _reversed(edges: dict[str, list[str]]) -> dict[str, list[str]]:
        reverse: dict[str, list[str]] = {}
        for member, roles in edges.items():
            for role in roles:
                reverse.setdefault(role, []).append(member)
        return reverse

    def grants(self, member: str, role: str) -> tuple[Membership, ...]:
        """Every grant of ``role`` to ``member`` (several on PG16+: one per grantor)."""
        return tuple(self._grants.get((member, role), ()))

    def grant_rows(self, member: str, role: str) -> tuple[Membership, ...]:
        """The pg_auth_members rows of ``role`` granted to ``member``: one per grantor
        (several on PG16+), each once, in the snapshot's order."""
        grants = self._grants.get((member, role), ())
        if len(grants) < 2:
            return tuple(grants)
        by_grantor: dict[str | None, Membership] = {}
        for grant in grants:
            by_grantor.setdefault(grant.grantor, grant)
        return tuple(by_grantor.values())

    def grant_rows_evidence(self, member: str, role: str) -> tuple[dict[str, object], ...]:
        """``grant_rows`` as findings show them, made once per membership and shared by
        every finding that shows it (a finding's evidence is never changed once made)."""
        key = (member, role)
        shown = self._grant_rows_evidence.get(key)
        if shown is None:
            shown = tuple(asdict(row) for row in self.grant_rows(member, role))
            self._grant_rows_evidence[key] = shown
        return shown

    def grant_row_count(self, edge: tuple[str, str]) -> int:
        """How many ``grant_rows`` the membership ``edge`` (member, role) has."""
        count = self._grant_row_counts.get(edge)
        if count is None:
            count = self._grant_row_counts[edge] = len(self.grant_rows(*edge))
        return count

    def access_grants(self, member: str, role: str) -> tuple[Membership, ...]:
        """The grants that give access (INHERIT or SET), not the ADMIN-only ones."""
        return tuple(g for g in self.grants(member, role) if g.inherit_option or g.set_option)

    def edge(self, member: str, role: str) -> Membership | None:
        grants = self.grants(member, role)
        return grants[0] if grants else None

    @staticmethod
    def _bfs(start: str, edges: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
        paths: dict[str, tuple[str, ...]] = {start: (start,)}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in edges.get(node, ()):
                if nxt not in paths:
                    paths[nxt] = (*paths[node], nxt)
                    queue.append(nxt)
        return paths

    def holders(self, role: str) -> dict[str, RolePath]:
        """Every role whose privileges ``role`` can use, with the shortest way there.

        ``role`` itself is included with mode ``direct``. Roles reachable by
        inheritance come first; the rest need ``SET ROLE`` to the path's ``set_role``.
        """
        cached = self._holders.get(role)
        if cached is not None:
            return cached
        result: dict[str, RolePath] = {
            name: RolePath(path, "direct" if name == role else "inherit")
            for name, path in self._bfs(role, self._inherit).items()
        }
        if self._set_only.isdisjoint(result):
            # Every SET grant from these roles also inherits: SET ROLE adds nothing.
            self._holders[role] = result
            return result
        for target, set_path in self._bfs(role, self._set).items():
            if target in result:
                # ``role`` itself, or a role it already reaches (by inheritance or an
                # earlier SET ROLE): everything that role inherits is in already.
                continue
            for name, tail in self._bfs(target, self._inherit).items():
                if name not in result:
                    result[name] = RolePath((*set_path, *tail[1:]), "set role", target)
        self._holders[role] = result
        return result

    def usable_groups(self, role: str) -> tuple[frozenset[str], frozenset[str]]:
        """The roles whose privileges ``role`` can use (``role`` excluded): those it
        inherits, and those only a ``SET ROLE`` reaches. ``holders`` without the paths,
        and not kept: asked for every login of a server, a path to every group each
        one reaches, kept, grew with roles times groups times the depth of the graph."""
        inherited = self._reach({role}, self._inherit)
        set_only: set[str] = set()
        if not self._set_only.isdisjoint(inherited):
            for target in self._reach({role}, self._set) - inherited:
                set_only |= self._reach({target}, self._inherit)
            set_only -= inherited
        inherited.discard(role)
        set_only.discard(role)
        return frozenset(inherited), frozenset(set_only)

    def settable(self, role: str) -> dict[str, RolePath]:
        """Every role ``role`` may ``SET ROLE`` to (and so take its attributes from)."""
        cached = self._settable.get(role)
        if cached is None:
            cached = {
                name: RolePath(path, "set role", name)
                for name, path in self._bfs(role, self._set).items()
                if name != role
            }
            self._settable[role] = cached
        return cached

    def member_of(self, role: str, group: str) -> RolePath | None:
        """Whether ``role`` can use ``group``'s privileges (inherit or SET ROLE)."""
        return self.holders(role).get(group) if role != group else None

    def classify(self, path: tuple[str, ...]) -> RolePath | None:
        """The mode of a membership path, or None when it gives no access."""
        edges = list(pairwise(path))
        if not edges:
            return RolePath(path, "direct")
        if any(e not in self._grants for e in edges):
            return None
        split = len(edges)
        while split > 0 and edges[split - 1] in self._inherit_edges:
            split -= 1
        if split == 0:
            return RolePath(path, "inherit")
        if all(e in self._set_edges for e in edges[:split]):
            return RolePath(path, "set role", path[split])
        return None

    def paths(self, role: str, holder: str, limit: int = MAX_PATHS) -> tuple[RolePath, ...]:
        """Every usable membership path from ``role`` to ``holder``, shortest first.

        Removing access means cutting all of them, not only the shortest.
        """
        if role == holder:
            return (RolePath((role,), "direct"),)
        if not self.can_use(role, holder):
            return ()
        key = (role, holder, limit)
        if key not in self._paths:
            self._paths[key] = self._search(role, holder, limit)
        return self._paths[key]

    def _search(self, role: str, holder: str, limit: int) -> tuple[RolePath, ...]:
        """Up to ``limit`` paths: the shortest, then depth-first from each of the role's
        own groups in turn, so that every grant by which the role leads to ``holder``
        starts one (a REVOKE of each path's first grant then cuts every way in) when
        there are no more of them than ``limit``.

        Only roles that lead to ``holder`` are stepped to: a search never wanders into
        the rest of the graph (on a lattice of a thousand roles, it wandered 20,000
        steps for each member and group, and missed the shortest way in).
        """
        reaching = self._toward(holder)

        def onward(current: str) -> list[str]:
            return [n for n in self._usable.get(current, ()) if n == holder or n in reaching]

        firsts = onward(role)
        if firsts == [holder]:
            # The role's one way there is its own grant (most members of most groups).
            direct = self.classify((role, holder))
            return (direct,) if direct is not None else ()
        single, only = self._single_way(role, holder)
        if single:
            # The shortest path is the only one, and all the walks below would find.
            return (only,) if only is not None else ()
        found: dict[tuple[str, ...], RolePath] = {}
        shortest = self._shortest(role, holder)
        if shortest is not None:
            found[shortest.path] = shortest
        budget = [_MAX_STEPS]
        walks = [self._walks((role, first), holder, onward, budget) for first in firsts]
        while walks and len(found) < limit:
            for walk in list(walks):
                path = next(walk, None)
                if path is None:
                    walks.remove(walk)
                    continue
                found.setdefault(path.path, path)
                if len(found) >= limit:
                    break
        return tuple(
            sorted(found.values(), key=lambda p: (len(p.path), p.mode != "inherit", p.path))
        )

    def _walks(
        self,
        start: tuple[str, ...],
        holder: str,
        onward: Callable[[str], list[str]],
        budget: list[int],
    ) -> Iterator[RolePath]:
        """The usable paths that begin with ``start`` and end at ``holder``, depth-first,
        while the shared step ``budget`` lasts."""
        stack = [start]
        while stack and budget[0] > 0:
            path = stack.pop()
            budget[0] -= 1
            if path[-1] == holder:
                classified = self.classify(path)
                if classified is not None:
                    yield classified
                continue
            for nxt in reversed(onward(path[-1])):
                if nxt not in path:
                    stack.append((*path, nxt))

    def _single_way(self, role: str, holder: str) -> tuple[bool, RolePath | None]:
        """Whether ``role`` has exactly one path to ``holder`` because every role on it
        leads on toward the holder through one group only; if so, that path classified
        (None when it gives no access).

        A chain of groups (an app's group in the next app's, and so on) asks this of
        every member and holder. Each role's answer is its next role's answer extended
        by one grant (``_extend``), kept per holder: a chain costs a step per role and
        holder, not a walk per member and holder (a copy of the path per step).
        """
        ways = self._single_ways.setdefault(holder, {})
        found = ways.get(role)
        if found is not None:
            return found
        onward = self._onward_one(holder)
        walked: list[str] = []
        current = role
        while True:
            known = ways.get(current)
            if known is not None:
                found = known
                break
            if current == holder:
                found = (True, RolePath((holder,), "direct"))
                break
            step = onward.get(current)
            if step is None or len(walked) > len(onward):
                # Another way, no way, or a cycle (never in PostgreSQL's catalogs, but a
                # snapshot is input): the walks decide.
                found = (False, None)
                break
            walked.append(current)
            current = step
        for member in reversed(walked):
            single, tail = found
            found = (single, self._extend(member, tail) if single and tail else None)
            ways[member] = found
        return found

    def _extend(self, member: str, tail: RolePath) -> RolePath | None:
        """``classify((member, *tail.path))``, knowing ``tail`` is ``tail.path``
        classified: one grant's options decide, not each grant of the path again."""
        edge = (member, tail.path[0])
        path = (member, *tail.path)
        if tail.mode == "set role":
            # Grants up to the SET ROLE must all carry SET; the rest inherit.
            return RolePath(path, "set role", tail.set_role) if edge in self._set_edges else None
        if edge in self._inherit_edges:
            return RolePath(path, "inherit")
        if edge in self._set_edges:
            return RolePath(path, "set role", tail.path[0])
        return None

    def _onward_one(self, holder: str) -> dict[str, str]:
        """Each role that leads toward ``holder`` through exactly one of its groups
        (the holder itself or a role that reaches it), with that group; cached."""
        cached = self._single_steps.get(holder)
        if cached is None:
            reaching = self._toward(holder)
            cached = {}
            for role in reaching:
                if role == holder:
                    continue
                steps = [n for n in self._usable.get(role, ()) if n in reaching]
                if len(steps) == 1:
                    cached[role] = steps[0]
            self._single_steps[holder] = cached
        return cached

    def _shortest(self, role: str, holder: str) -> RolePath | None:
        """A shortest path from ``role`` to ``holder``, if it is usable: of several, the
        first in name order, each step to the first group one step nearer the holder
        (``_toward``: the distances, found once for every role)."""
        distance = self._toward(holder)
        if role not in distance:
            return None
        path = [role]
        while path[-1] != holder:
            nearer = distance[path[-1]] - 1
            path.append(next(n for n in self._usable[path[-1]] if distance.get(n) == nearer))
        return self.classify(tuple(path))

    def _toward(self, holder: str) -> dict[str, int]:
        """How many grants from ``holder`` each role with a membership path to it along
        usable grants is (``holder``: 0; one walk backwards per holder, cached)."""
        cached = self._distances.get(holder)
        if cached is None:
            if self._reverse_usable is None:
                self._reverse_usable = self._reversed(self._usable)
            cached = {holder: 0}
            queue = deque([holder])
            while queue:
                current = queue.popleft()
                for member in self._reverse_usable.get(current, ()):
                    if member not in cached:
                        cached[member] = cached[current] + 1
                        queue.append(member)
            self._distances[holder] = cached
        return cached

    def set_paths(self, role: str, target: str) -> tuple[RolePath, ...]:
        """The paths along which ``role`` may ``SET ROLE`` to ``target`` (SET all the way).

        Only these confer ``target``'s attributes: inheritance never does.
        """
        return tuple(
            RolePath(p.path, "set role", target)
            for p in self.paths(role, target)
            if all(edge in self._set_edges for edge in p.edges)
        )

    def user_names(self, group: str) -> frozenset[str]:
        """Every role that can use ``group``'s privileges (``group`` excluded).

        The reverse of ``holders``: the roles that inherit ``group``, and every role
        that can SET ROLE to one of them. One walk per group, cached.
        """
        cached = self._user_names.get(group)
        if cached is None:
            found = self._reach({group}, self._reverse_inherit)
            if not self.always_inherits:
                # Only a SET grant without INHERIT can let a role in that the walk
                # along inheritance missed: without one, a second walk finds nothing.
                found = self._reach(found, self._reverse_set)
            found.discard(group)
            cached = self._user_names[group] = frozenset(found)
        return cached

    @cached_property
    def groups(self) -> frozenset[str]:
        """Every role some other role can use (by INHERIT or SET): the groups with members."""
        return frozenset(self._reverse_inherit.keys() | self._reverse_set.keys())

    def set_role_users(self, group: str) -> frozenset[str]:
        """Every role that may ``SET ROLE`` to ``group`` (``group`` excluded).

        The reverse of ``settable``: one walk backwards along SET grants.
        """
        return frozenset(self._reach({group}, self._reverse_set) - {group})

    @staticmethod
    def _reach(starts: Iterable[str], edges: dict[str, list[str]]) -> set[str]:
        """Every role reachable from any of ``starts`` along ``edges`` (starts included)."""
        found = set(starts)
        queue = deque(found)
        while queue:
            for nxt in edges.get(queue.popleft(), ()):
                if nxt not in found:
                    found.add(nxt)
                    queue.append(nxt)
        return found

    def can_use(self, role: str, group: str) -> bool:
        """Whether ``role`` is ``group`` or can use its privileges (``group in holders(role)``).

        Asked from the group's side: one cached walk per group serves every role.
        """
        return role == group or role in self.user_names(group)

    def users_of(self, group: str) -> dict[str, RolePath]:
        """Every role that can use ``group``'s privileges, with its shortest path."""
        # user_names walks the graph backwards once; holders() then gives each path.
        return {name: self.holders(name)[group] for name in sorted(self.user_names(group))}

    def any_path(self, role: str, group: str) -> tuple[str, ...] | None:
        """Any membership path, including ADMIN-only grants (for reporting, not access)."""
        return self._bfs(role, self._any).get(group)

    def admin_of(self, role: str) -> tuple[str, ...]:
        """Roles ``role`` holds directly WITH ADMIN OPTION (it may grant them to anyone)."""
        # From the member's own grants, not a pass over every grant on the server.
        return tuple(
            target
            for target in self._any.get(role, ())
            if any(g.admin_option for g in self._grants[(role, target)])
        )
