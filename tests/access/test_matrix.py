"""The access matrix: which app (or PUBLIC) reaches each app database, and how.

An app reaches a database by a grant when one of its roles is a CONNECT grantee,
through membership when its roles only belong to (or may SET ROLE to) a grantee; the
database's own app is "own". Asked of the grantees, once each, however many roles
stand behind them.
"""

from __future__ import annotations

from typing import Any

from pgwarden.access.matrix import access_cells
from pgwarden.model.config import Config
from tests.perf.shapes import one_server, only_server

CONNECT = ["CONNECT"]


def _grant(grantee: str | None) -> dict[str, Any]:
    return {"grantee": grantee, "grantor": "a_owner", "privileges": CONNECT}


def _cells(databases: list[dict[str, Any]]) -> list[tuple[str, str, str, bool]]:
    roles = [
        "admin",
        "auditor",
        "a_owner",
        "b_user",
        "b_team",
        "c_user",
        "d_user",
        "e_user",
        "e_member",
        "team",
        "lattice",
    ]
    # c_user is in a group of no app (team) that is granted; d_user reaches a_owner's
    # grant only through two groups; e has a role granted and a role in team.
    memberships = [
        ("c_user", "team"),
        ("e_member", "team"),
        ("d_user", "lattice"),
        ("lattice", "team"),
        ("b_user", "b_team"),
    ]
    snapshot = one_server(
        {
            "settings": {},
            "databases": databases,
            "roles": [{"name": r, "login": r.endswith("_user")} for r in roles],
            "memberships": [{"member": m, "role": r} for m, r in memberships],
            "sessions": [],
            "database_details": [],
        }
    )
    apps = [
        ("a", ["a_db", "a_old"], ["a_owner"]),
        ("b", ["b_db"], ["b_user", "b_team"]),
        ("c", ["c_db"], ["c_user"]),
        ("d", ["d_db"], ["d_user"]),
        ("e", ["e_db"], ["e_user", "e_member"]),
    ]
    config = Config.model_validate(
        {
            "server": [
                {
                    "name": "srv",
                    "admin_role": "admin",
                    "platform_roles": ["auditor"],
                    "app": [{"name": n, "databases": d, "roles": r} for n, d, r in apps],
                }
            ]
        }
    )
    cells = access_cells(*only_server(snapshot, config))
    return [(c.database, c.principal, c.via, c.violation) for c in cells]


def test_each_app_reaching_a_database_is_one_cell_by_grant_or_membership() -> None:
    a_db = {
        "name": "a_db",
        "owner": "a_owner",
        "acl": [
            _grant(None),
            _grant("a_owner"),
            _grant("b_team"),  # b's own group: a grant to b, whatever its members
            _grant("team"),  # c, d (two groups deep) and e through membership ...
            _grant("e_user"),  # ... but e also by a grant to one of its roles
        ],
    }
    # Behind lattice stands only d's role (c's and e's are in team, which lattice is a
    # member of, not the other way); the admin's grant reaches no app.
    a_old = {"name": "a_old", "owner": "a_owner", "acl": [_grant("lattice"), _grant("admin")]}
    others = [{"name": f"{app}_db", "owner": "admin", "acl": []} for app in "bcde"]
    assert _cells([a_db, a_old, *others]) == [
        ("a_db", "PUBLIC", "public", True),
        ("a_db", "a", "own", False),
        ("a_db", "b", "grant", True),
        ("a_db", "c", "membership", True),
        ("a_db", "d", "membership", True),
        ("a_db", "e", "grant", True),
        ("a_old", "a", "own", False),
        ("a_old", "d", "membership", True),
        ("b_db", "b", "own", False),
        ("c_db", "c", "own", False),
        ("d_db", "d", "own", False),
        ("e_db", "e", "own", False),
    ]
