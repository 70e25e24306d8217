"""Who holds a privilege at login, answered from the ACL's holders and the role's
inherited groups (``grants.holds_at_login``, ``Tenancy.holds_at_login``), is what the
full path search says (``Access.usable_at_login`` of every access the ACL gives), on
role graphs of any shape: INHERIT and SET in every combination, cycles, a role granted
to itself through others, the owner anywhere in the graph.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pgwarden.access.grants import acl_accesses, holds_at_login, ownership_access
from pgwarden.access.graph import RoleGraph
from pgwarden.model.snapshot import AclItem, Membership

ROLES = ("a", "b", "c", "d", "e", "owner")
PRIVILEGES = ("CONNECT", "TEMPORARY")

_memberships = st.builds(
    Membership,
    role=st.sampled_from(ROLES),
    member=st.sampled_from(ROLES),
    admin_option=st.booleans(),
    inherit_option=st.booleans(),
    set_option=st.booleans(),
).filter(lambda m: m.role != m.member)
_items = st.builds(
    AclItem,
    grantee=st.one_of(st.none(), st.sampled_from(ROLES)),
    grantor=st.just("owner"),
    privileges=st.lists(st.sampled_from(PRIVILEGES), min_size=1, unique=True).map(tuple),
)


def _by_path_search(acl: list[AclItem], owner: str, role: str, graph: RoleGraph) -> bool:
    """What holding CONNECT at login means, spelled out with the full path search."""
    owned = ownership_access(role, owner, graph)
    return (owned is not None and owned.usable_at_login) or any(
        a.usable_at_login
        for a in acl_accesses(acl, role, graph, ("CONNECT",), include_public=False)
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_memberships, max_size=10),
    st.lists(_items, max_size=6),
    st.sampled_from(ROLES),
)
def test_holders_and_inherited_groups_answer_as_the_path_search(
    memberships: list[Membership], acl: list[AclItem], owner: str
) -> None:
    graph = RoleGraph(memberships)
    for role in (*ROLES, "nobody"):
        expected = _by_path_search(acl, owner, role, graph)
        assert holds_at_login(acl, owner, role, graph, "CONNECT") == expected, role
