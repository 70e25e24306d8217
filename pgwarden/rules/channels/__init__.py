"""PGW-CHAN: channels between databases of one server (foreign servers, user mappings, pg_cron)."""

from __future__ import annotations

from pgwarden.rules.channels.cron_jobs import CronJobAcrossApps
from pgwarden.rules.channels.foreign_servers import ForeignServerToOtherApp
from pgwarden.rules.channels.user_mappings import CredentialsInUserMapping, ForeignRoleUsesChannel

RULES = [
    ForeignServerToOtherApp,
    ForeignRoleUsesChannel,
    CredentialsInUserMapping,
    CronJobAcrossApps,
]
