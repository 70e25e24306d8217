"""The apps-by-databases access matrix: which app (or PUBLIC) reaches each app database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgwarden.access.tenancy import Tenancy
from pgwarden.model.results import AccessCell, EntraRole
from pgwarden.model.snapshot import ServerSnapshot

if TYPE_CHECKING:
    from pgwarden.model.context import ServerContext


def access_cells(snapshot: ServerSnapshot, context: ServerContext) -> tuple[AccessCell, ...]:
    """Apps (and PUBLIC) by app databases: who reaches which database, and how."""
    tenancy = Tenancy.of(snapshot, context)  # the one the server's rules used
    order = {app.name: index for index, app in enumerate(context.server.app)}  # the map's
    cells: list[AccessCell] = []
    for database, owner_app in context.app_databases().items():
        db = tenancy.databases.get(database)
        if db is None:
            continue
        if db.public_connect:
            cells.append(
                AccessCell(
                    database=database,
                    app=owner_app,
                    principal="PUBLIC",
                    via="public",
                    violation=True,
                )
            )
        # Only an app role that is, or can use, a CONNECT grantee can reach it: by a
        # grant when it is one, else through membership (no access needs building).
        grantees = {
            item.grantee
            for item in db.acl
            if item.grantee is not None and "CONNECT" in item.privileges
        }
        reaching: dict[str, set[str]] = {}
        for grantee in grantees:
            for app, roles in tenancy.app_users(grantee).items():
                reaching.setdefault(app, set()).update(roles)
        for app in sorted(reaching.keys() | {owner_app}, key=order.__getitem__):
            if app == owner_app:
                cells.append(AccessCell(database=database, app=owner_app, principal=app, via="own"))
                continue
            cells.append(
                AccessCell(
                    database=database,
                    app=owner_app,
                    principal=app,
                    via="membership" if reaching[app].isdisjoint(grantees) else "grant",
                    violation=True,
                )
            )
    return tuple(cells)


def entra_principals(snapshot: ServerSnapshot, context: ServerContext) -> tuple[EntraRole, ...]:
    """The roles that are Microsoft Entra principals, with the app each belongs to."""
    tenancy = Tenancy.of(snapshot, context)
    return tuple(
        EntraRole(
            role=name,
            kind=role.entra_kind,
            object_id=role.entra_object_id,
            app=tenancy.role_apps.get(name),
            login=role.login,
        )
        for name, role in sorted(tenancy.roles.items())
        if role.entra_kind is not None
    )
