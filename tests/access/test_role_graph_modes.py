"""The role graph shares one member's edges between modes only where they are the same."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from pgwarden.access.graph import RoleGraph, RolePath
from pgwarden.model.snapshot import Membership
from tests.calls import counted_calls


def grant(
    member: str, role: str, *, inherit: bool = True, set_: bool = True, grantor: str = "postgres"
) -> Membership:
    return Membership(
        role=role, member=member, grantor=grantor, inherit_option=inherit, set_option=set_
    )


def walk(grants: list[Membership], start: str, usable: str) -> set[str]:
    """Every role reached from ``start`` along grants with ``usable`` (done afresh)."""
    found, todo = {start}, [start]
    while todo:
        member = todo.pop()
        for g in grants:
            if g.member == member and getattr(g, usable) and g.role not in found:
                found.add(g.role)
                todo.append(g.role)
    return found


MIXED = [
    # "a" has every option on every grant; "b" lacks INHERIT on one grant and SET on
    # another; "c" holds "d" twice (PG16: one grant per grantor), the options adding up;
    # "e" holds "f" with ADMIN only (neither option).
    grant("a", "b"),
    grant("a", "c"),
    grant("b", "d", inherit=False),
    grant("b", "e", set_=False),
    grant("c", "d", inherit=False, grantor="x"),
    grant("c", "d", set_=False, grantor="y"),
    grant("e", "f", inherit=False, set_=False),
]


@pytest.mark.parametrize("grants", [MIXED, [g for g in MIXED if g.member == "a"]])
def test_each_mode_follows_only_its_own_grants(grants: list[Membership]) -> None:
    graph = RoleGraph(grants)
    for role in sorted(graph.names):
        inherited = {n for n, p in graph.holders(role).items() if p.mode != "set role"}
        assert inherited == walk(grants, role, "inherit_option"), role
        assert set(graph.settable(role)) == walk(grants, role, "set_option") - {role}, role
        for group in graph.names - {role}:
            assert graph.can_use(role, group) == (group in graph.holders(role)), (role, group)


def test_options_of_one_pair_add_up_and_admin_only_gives_nothing() -> None:
    graph = RoleGraph(MIXED)
    assert graph.holders("c")["d"] == RolePath(("c", "d"), "inherit")
    assert "d" in graph.settable("c")
    assert "f" not in graph.holders("e")
    assert graph.any_path("e", "f") == ("e", "f")
    assert graph.names == {"a", "b", "c", "d", "e", "f"}


def _lattice(layers: int = 10, width: int = 100, fan: int = 5) -> list[Membership]:
    """``layers`` layers of ``width`` roles, each a member of ``fan`` roles of the layer
    above; the top layer in ``top``: exponentially many ways from the bottom to ``top``."""
    grants = [
        Membership(
            member=f"L{i:02d}_{j:03d}", role=f"L{i - 1:02d}_{(j * 7 + k * 13 + i) % width:03d}"
        )
        for i in range(1, layers)
        for j in range(width)
        for k in range(fan)
    ]
    return grants + [Membership(member=f"L00_{j:03d}", role="top") for j in range(width)]


def test_a_lattice_shows_the_shortest_way_and_every_first_grant() -> None:
    # The bottom role reaches pg_read_all_data through one short chain, named after
    # the lattice's groups, and reaches top through each of its five groups: the paths
    # hold the short chain, and a path through every one of the five (so revoking each
    # path's first grant cuts every way in).
    bottom = "L09_000"
    graph = RoleGraph(
        [
            *_lattice(),
            Membership(member=bottom, role="zz_chain"),
            Membership(member="zz_chain", role="pg_read_all_data"),
        ]
    )
    [short] = graph.paths(bottom, "pg_read_all_data")
    assert short.path == (bottom, "zz_chain", "pg_read_all_data")
    to_top = graph.paths(bottom, "top")
    firsts = {p.edges[0][1] for p in to_top}
    groups = {m.role for m in _lattice() if m.member == bottom}
    assert firsts == groups and len(groups) == 5
    assert all(p.path[-1] == "top" and len(p.path) == 11 for p in to_top)


def _every_path(grants: list[Membership], role: str, holder: str) -> tuple[RolePath, ...]:
    """Every usable path from ``role`` to ``holder``, done afresh: each simple path along
    grants with INHERIT or SET, classified, shortest first (``RoleGraph.paths``' order)."""
    graph = RoleGraph(grants)
    onward: dict[str, set[str]] = {}
    for g in grants:
        if g.inherit_option or g.set_option:
            onward.setdefault(g.member, set()).add(g.role)
    found: list[RolePath] = []
    todo: list[tuple[str, ...]] = [(role,)]
    while todo:
        path = todo.pop()
        if path[-1] == holder:
            classified = graph.classify(path)
            if classified is not None:
                found.append(classified)
            continue
        todo += [(*path, n) for n in onward.get(path[-1], ()) if n not in path]
    return tuple(sorted(found, key=lambda p: (len(p.path), p.mode != "inherit", p.path)))


@pytest.mark.parametrize("seed", range(40))
def test_paths_are_every_usable_path_whatever_the_options(seed: int) -> None:
    # Small random graphs (a chain with a few shortcuts and branches) with random
    # INHERIT and SET options: chains take the one-way shortcut (RoleGraph._single_way),
    # branches the walks; both must give every usable path, each with its mode.
    rng = random.Random(seed)
    names = [f"r{i}" for i in range(8)]
    pairs = {(names[i], names[i + 1]) for i in range(7)}
    for _ in range(rng.randrange(3)):
        low, high = sorted(rng.sample(names, 2))
        pairs.add((low, high))
    grants = [
        grant(m, r, inherit=rng.random() < 0.7, set_=rng.random() < 0.7) for m, r in sorted(pairs)
    ]
    graph = RoleGraph(grants)
    for i, role in enumerate(names):
        for holder in names[i + 1 :]:
            assert graph.paths(role, holder) == _every_path(grants, role, holder), (
                role,
                holder,
                grants,
            )


def test_a_chain_costs_its_pairs_not_pairs_times_depth() -> None:
    # Each of a chain's roles asked for its way to each role above it (a chain of
    # apps' groups, each in the next): the work follows the pairs asked (four times at
    # twice the depth), not the pairs times the path's length (eight times; it was 7.3
    # times when each pair walked its path afresh).
    def work(depth: int) -> int:
        roles = [f"g{i:03d}" for i in range(depth)]
        graph = RoleGraph([grant(a, b) for a, b in pairwise(roles)])
        calls, found = counted_calls(
            lambda: [graph.paths(a, b) for i, a in enumerate(roles) for b in roles[i + 1 :]]
        )
        assert all(len(p) == 1 for p in found)
        return calls

    small, large = work(40), work(80)
    assert large / small < 4.6, (small, large)
