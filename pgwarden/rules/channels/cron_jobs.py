"""PGW-CHAN-004: pg_cron jobs that run in one app's database as another app's role."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.access.remediation import in_database, sql_comment
from pgwarden.access.tenancy import Tenancy
from pgwarden.model.channels import CronJob, PgCron
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Rule, Section, ServerContext, Verdict, quote_ident
from pgwarden.rules.channels._endpoints import ServerIdentity, resolve, server_identity
from pgwarden.rules.channels._foreign import CHANNEL_CONTROLS


class CronJobAcrossApps(Rule):
    """A pg_cron job runs in an app's database as a role of another app.

    pg_cron keeps its jobs in one database (``cron.database_name``) and runs each by
    opening a session in the job's ``database`` as its ``username``;
    ``cron.schedule_in_database`` lets a superuser (or Azure's admin) point a job at
    any database and any role. A job whose role belongs to another app than its
    database, or to no app, is a standing session of one tenant inside another's
    database, on a timer nobody watches.

    Violation: A job in ``cron.job`` runs on this server in a database of one app as a
    principal (an app role or a login of no app) that is not that app's. An ``error``
    when row-level security on ``cron.job`` showed the auditor only its own jobs.

    Fix: SELECT cron.unschedule(<jobid>); in pg_cron's database (as the job's role or a
    superuser), and schedule the work as the database's own app role.
    """

    id = "PGW-CHAN-004"
    severity = "high"
    controls = CHANNEL_CONTROLS
    requires = (Section.TENANCY_MAP, Section.POSTGRES, Section.POSTGRES_CRON)

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        tenancy = Tenancy.of(snapshot, context)
        cron = tenancy.pg.pg_cron
        if cron is None or cron.database is None or not cron.installed:
            return  # pg_cron is not loaded, or was never created: no jobs can run
        if not cron.all_visible:
            yield self._hidden(tenancy, cron)
        identity = server_identity(snapshot)
        for job in cron.jobs:
            yield from self._judge(tenancy, cron, identity, job)

    @staticmethod
    def _hidden(tenancy: Tenancy, cron: PgCron) -> Verdict:
        auditor = quote_ident(tenancy.pg.connected_as)
        return Verdict(
            resource=f"database/{cron.database}",
            status="error",
            message="row-level security on cron.job showed the auditor only its own jobs: "
            "the other roles' pg_cron jobs are unknown",
            evidence={"cron_database": cron.database, "visible_jobs": len(cron.jobs)},
            remediation=f"ALTER ROLE {auditor} BYPASSRLS;  "
            "-- by a role allowed to grant it: cron.job's policy shows each role its own jobs",
        )

    @staticmethod
    def _judge(
        tenancy: Tenancy, cron: PgCron, identity: ServerIdentity, job: CronJob
    ) -> Iterable[Verdict]:
        app = tenancy.app_databases.get(job.database)
        if app is None or not tenancy.is_principal(job.user):
            return
        user_app = tenancy.role_apps.get(job.user)
        if user_app == app:
            return
        options = {"host": job.node or "", "port": str(job.port or "")}
        target = resolve(options, identity)
        if target.match == "elsewhere":
            return
        runs_as = f"role {job.user!r} " + (
            f"of app {user_app!r}" if user_app else "(a login of no app)"
        )
        assert cron.database is not None
        yield Verdict(
            resource=f"cron-job/{job.job_id}",
            principal=f"role/{job.user}",
            app=app,
            message=f"pg_cron job {job.job_id}"
            + (f" ({job.name!r})" if job.name else "")
            + f" runs in database {job.database!r} of app {app!r} as {runs_as}",
            evidence={
                "job": job.model_dump(),
                "cron_database": cron.database,
                "database_app": app,
                "user_app": user_app,
                "node": target.why,
            },
            remediation="\n".join(
                [
                    in_database(cron.database),
                    sql_comment(f"as {job.user!r} or a superuser:"),
                    f"SELECT cron.unschedule({job.job_id});",
                ]
            ),
        )
