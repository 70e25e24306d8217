"""Channels out of a database: foreign servers with their user mappings, pg_cron jobs.

``dblink`` and ``postgres_fdw`` open libpq connections from inside a database, to any
host, the server itself included; ``pg_cron`` runs SQL in any database as any role a
superuser names. Only where a channel leads is kept: no password, no option value
beyond the connection target, no job command (any of them may hold a secret).
"""

from __future__ import annotations

from pydantic import Field

from pgwarden.model.acl import AclItem
from pgwarden.model.frozen import Frozen

# The libpq options that say where a connection goes: the only option values kept.
TARGET_OPTIONS = ("host", "hostaddr", "port", "dbname", "service")


class UserMapping(Frozen):
    """Who a local role logs in as through a foreign server (``pg_user_mappings``).

    ``role`` None is the mapping for PUBLIC. ``pg_user_mappings`` shows the options
    only to the mapped role itself, to the server's owner for a PUBLIC mapping, and to
    superusers: ``options_visible`` False means ``remote_user`` and
    ``password_stored`` are unknown, not absent. Of the options only the remote user
    name and whether a password is stored are kept; the others by name.
    """

    role: str | None
    options_visible: bool
    remote_user: str | None = None
    password_stored: bool | None = None
    option_names: tuple[str, ...] = ()


class ForeignServer(Frozen):
    """A foreign server (``pg_foreign_server``) and the user mappings on it.

    ``options`` keeps the connection target (``TARGET_OPTIONS``); any other option is
    kept by name in ``other_options``. ``wrapper`` is the foreign-data wrapper's name
    (``postgres_fdw``, ``dblink_fdw``, ...). ``acl`` is effective: a NULL ``srvacl``
    (the owner's USAGE only) is made explicit.
    """

    name: str
    wrapper: str
    owner: str
    acl: tuple[AclItem, ...]
    options: dict[str, str] = Field(default_factory=dict)
    other_options: tuple[str, ...] = ()
    user_mappings: tuple[UserMapping, ...] = ()


class CronJob(Frozen):
    """One row of ``cron.job``: where and as whom pg_cron runs a command (not kept).

    ``node`` and ``port`` are where pg_cron connects to run it (``localhost`` and the
    server's own port unless a job was pointed elsewhere).
    """

    job_id: int
    name: str | None = None
    schedule: str
    database: str
    user: str
    active: bool = True
    node: str | None = None
    port: int | None = None


class PgCron(Frozen):
    """pg_cron as one server shows it.

    ``database`` is ``cron.database_name``, where ``cron.job`` lives (None: pg_cron is
    not loaded); ``installed`` whether the extension exists there. ``cron.job`` has
    row-level security showing each role its own jobs: ``all_visible`` is False when
    the auditor saw only its own (neither superuser nor BYPASSRLS).
    """

    database: str | None = None
    installed: bool = False
    all_visible: bool = True
    jobs: tuple[CronJob, ...] = ()
