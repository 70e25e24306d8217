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
        # grant when one of the app's roles is a grantee, else through membership. The
        # apps are asked of each grantee (``app_users``, once per grantee), never their
        # roles gathered per database: a group of a thousand tenants granted CONNECT on
        # each of a thousand databases is a thousand answers, not a million names.
        grantees = {
            item.grantee
            for item in db.acl
            if item.grantee is not None and "CONNECT" in item.privileges
        }
        reaching = {owner_app}
        for grantee in grantees:
            reaching.update(tenancy.app_users(grantee))
        granted = {tenancy.role_apps.get(grantee) for grantee in grantees}
        for app in sorted(reaching, key=order.__getitem__):
            if app == owner_app:
                cells.append(AccessCell(database=database, app=owner_app, principal=app, via="own"))
                continue
            cells.append(
                AccessCell(
                    database=database,
                    app=owner_app,
                    principal=app,
                    via="grant" if app in granted else "membership",
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
