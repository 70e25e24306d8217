"""Who holds a privilege at login, answered from the ACL's holders and the role's
inherited groups (``grants.holds_at_login``, ``Tenancy.holds_at_login``), is what the
full path search says (``Access.usable_at_login`` of every access the ACL gives), on
role graphs of any shape: INHERIT and SET in every combination, cycles, a role granted
to itself through others, the owner anywhere in the graph. And the roles of other apps,
read a run of one app's roles at a time, are those a pass over every role finds.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pgwarden.access.grants import acl_accesses, holds_at_login, ownership_access
from pgwarden.access.graph import RoleGraph
from pgwarden.access.tenancy import _ByApp
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


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(("x", "y", "z", None)), max_size=30),
    st.sampled_from(("x", "y", "z", "w", None)),
)
def test_the_roles_of_other_apps_are_read_skipping_each_apps_runs(
    apps: list[str | None], app: str | None
) -> None:
    # Sorted roles and the app of each (None: of no app), in any pattern of runs.
    ordered = tuple(f"r{n:03d}" for n in range(len(apps)))
    role_apps = {role: a for role, a in zip(ordered, apps, strict=True) if a is not None}
    expected = [role for role in ordered if role_apps.get(role) != app]
    assert list(_ByApp(ordered, role_apps).others(app)) == expected
