"""Work the access analysis shares or skips gives the answers it would give done afresh."""

from __future__ import annotations

import pytest

from pgwarden.access.grants import Access, acl_accesses
from pgwarden.access.graph import RoleGraph, RolePath
from pgwarden.model.snapshot import AclItem, Membership


def grant(member: str, role: str, *, inherit: bool = True, set_: bool = True) -> Membership:
    return Membership(
        role=role, member=member, grantor="postgres", inherit_option=inherit, set_option=set_
    )


@pytest.mark.parametrize(
    "grants",
    [
        # Every grant inherits: the walk backwards along SET grants is skipped.
        [grant("a", "b"), grant("b", "c"), grant("d", "c"), grant("e", "a", set_=False)],
        # A SET grant without INHERIT: only the second walk finds "a" as a user of "c".
        [grant("a", "b", inherit=False), grant("b", "c"), grant("d", "c")],
    ],
    ids=["all-inherit", "noinherit"],
)
def test_user_names_are_the_roles_whose_holders_include_the_group(
    grants: list[Membership],
) -> None:
    graph = RoleGraph(grants)
    for group in sorted(graph.names):
        expected = {r for r in graph.names if r != group and group in graph.holders(r)}
        assert graph.user_names(group) == expected, group


def test_evidence_of_one_access_differs_by_chain_only() -> None:
    item = AclItem(grantee="g", grantor="owner", privileges=("SELECT", "INSERT"))
    graph = RoleGraph([grant("r", "g", inherit=False)])
    (access,) = acl_accesses([item], "r", graph)
    first = access.evidence('TABLE "t1"')
    second = access.evidence('TABLE "t2"')
    assert first["chain"] == 'r → g → INSERT, SELECT on TABLE "t1"'
    assert {k: v for k, v in first.items() if k != "chain"} == {
        k: v for k, v in second.items() if k != "chain"
    }
    # The order findings show, whatever is worked out once.
    assert list(first) == [
        "via",
        "chain",
        "privileges",
        "acl_item",
        "grantee",
        "grantor",
        "paths",
        "needs_set_role",
        "note",
    ]
    assert first["acl_item"] == "g=ar/owner"
    assert first["paths"] == [{"path": ["r", "g"], "mode": "set role", "set_role": "g"}]


def test_evidence_of_a_direct_grant_has_no_paths() -> None:
    item = AclItem(grantee="r", grantor="owner", privileges=("CONNECT",), grantable=("CONNECT",))
    access = Access("r", ("CONNECT",), "grant", "r", "owner", (RolePath(("r",), "direct"),), item)
    assert access.evidence("db") == {
        "via": "grant",
        "chain": "r → CONNECT on db",
        "privileges": ["CONNECT"],
        "acl_item": "r=c*/owner",
        "grantee": "r",
        "grantor": "owner",
    }
