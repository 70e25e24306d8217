"""Collect a Snapshot of every configured server (the collect half of the pipeline)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pgwarden import __version__
from pgwarden.collect.dsn import resolve_dsn
from pgwarden.collect.endpoint import describe_endpoint, endpoint_of
from pgwarden.collect.failure import describe_failure
from pgwarden.collect.plan import (
    DEFAULT_SERVER_JOBS,
    DISCOVERED_WITHOUT_DSN,
    ScanPlan,
    Target,
    plan_scan,
)
from pgwarden.collect.postgres.collector import DEFAULT_JOBS, PostgresCollector
from pgwarden.collect.postgres.scram import ScramKeyReuse
from pgwarden.model.config import Config, ServerConfig
from pgwarden.model.errors import CollectorError, ConfigError, ConnectError, PgwardenError
from pgwarden.model.shards import Shard
from pgwarden.model.snapshot import AzureSnapshot, Gap, ServerSnapshot, Snapshot

if TYPE_CHECKING:
    # The Azure SDK is imported only when a scan needs Azure: it costs a second of
    # start-up that plain PostgreSQL scans should not pay.
    from pgwarden.collect.azure.cloud import AzureSession

# Progress messages are plain text: "N server(s) to collect" once, then per server
# "SERVER: started", "SERVER: finished" or "SERVER: failed: REASON", with the
# collectors' own "SERVER: ..." lines in between, and before the end "SERVER: N
# database(s) not read" when some were tried in vain and "SERVER: N Azure call(s)" when
# the server was read in Azure (terminal.ScanProgress counts them).
Progress = Callable[[str], None]
# How long past its budget a server that does not notice it may run before the scan
# reports it and moves on (its sessions end within their own timeouts).
OVERRUN_GRACE_S = 5.0
log = logging.getLogger(__name__)


def collect_server(
    config: Config,
    server: ServerConfig,
    *,
    jobs: int = DEFAULT_JOBS,
    progress: Progress | None = None,
    azure: AzureSession | None = None,
    discovered: bool = False,
    scram_key_reuse: bool = True,
    without_postgres: str | None = None,
    fix: str | None = None,
    isolated: bool = False,
) -> ServerSnapshot:
    """Collect one server. Config problems raise; an unusable server is recorded.

    ``azure`` reads the server's Azure side when the config asks for it; a server
    found by discovery without a DSN (``discovered``, or ``without_postgres`` saying
    why) has only its Azure side collected. The logins to each database reuse SCRAM
    keys derived once unless ``scram_key_reuse`` or ``[policy] scram_key_reuse`` is false.
    An ``isolated`` server's Azure problems (ARM no longer knowing it) are its errors,
    not a config error of the run.
    """
    azure_snapshot = None
    azure_errors: tuple[Gap, ...] = ()
    if azure is not None and server.wants_azure():
        from pgwarden.collect.azure.server import collect_azure

        if progress:
            progress(f"{server.name}: reading Azure")
        try:
            azure_snapshot = collect_azure(config, server, azure)
        except ConfigError as exc:
            if not isolated:
                raise
            azure_errors = (Gap(section="azure", reason=str(exc)),)
        except PgwardenError:
            raise
        except Exception as exc:  # the PostgreSQL side is still worth collecting
            azure_snapshot = AzureSnapshot(
                cloud=azure.cloud.name,
                gaps=(
                    Gap(
                        section="azure",
                        reason=f"reading Azure failed: {describe_failure(exc)}",
                    ),
                ),
            )
    if discovered and without_postgres is None:
        without_postgres, fix = DISCOVERED_WITHOUT_DSN, "add a [[server]] for it with a dsn"
    if without_postgres is not None:
        return ServerSnapshot(
            name=server.name,
            azure=azure_snapshot,
            errors=(*azure_errors, Gap(section="postgres", reason=without_postgres, fix=fix)),
        )
    where = f"{config.path or 'config'}: server[name={server.name!r}].dsn"
    try:
        dsn = resolve_dsn(server.dsn, where, azure=config.azure, session=azure)
    except ConnectError as exc:
        return ServerSnapshot(
            name=server.name,
            azure=azure_snapshot,
            errors=(*azure_errors, Gap(section="postgres", reason=str(exc), fix=None)),
        )
    log.debug("%s: collecting PostgreSQL from %s", server.name, describe_endpoint(endpoint_of(dsn)))
    collector = PostgresCollector(
        dsn,
        jobs=jobs,
        session_samples=config.policy.session_samples,
        session_window_seconds=config.policy.session_window_seconds,
        progress=(lambda message: progress(f"{server.name}: {message}")) if progress else None,
        scram_key_reuse=(
            ScramKeyReuse() if scram_key_reuse and config.policy.scram_key_reuse else None
        ),
    )
    try:
        postgres = collector.collect()
        stats = collector.stats
        log.debug(
            "%s: %d statement(s) over %d connection(s)%s; %s",
            server.name,
            stats.statements,
            stats.connections,
            " (SCRAM keys derived once)" if stats.derived_keys else "",
            ", ".join(f"{name} {seconds:.2f}s" for name, seconds in stats.phase_seconds.items()),
        )
    except CollectorError as exc:
        return ServerSnapshot(
            name=server.name,
            azure=azure_snapshot,
            errors=(*azure_errors, Gap(section="postgres", reason=str(exc), fix=None)),
        )
    return ServerSnapshot(
        name=server.name, postgres=postgres, azure=azure_snapshot, errors=azure_errors
    )


class ServerOutOfTime(Exception):
    """A server's collection ran past its time budget (raised from its progress calls)."""


class _ServerProgress:
    """One server's progress callback: prefixes nothing, checks the budget, and goes
    silent once the scan has reported the server (so it is never counted twice)."""

    def __init__(self, progress: Progress | None, deadline: float | None) -> None:
        self._progress = progress
        self.deadline = deadline
        self.closed = False
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ServerOutOfTime
        self.say(message)

    def say(self, message: str) -> None:
        with self._lock:
            if not self.closed and self._progress is not None:
                self._progress(message)

    def close(self, message: str | None = None) -> bool:
        """Say the last word about the server, once; whether this call said it."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
            if message is not None and self._progress is not None:
                self._progress(message)
            return True


def _out_of_time(server: ServerConfig, budget: float) -> ServerSnapshot:
    return ServerSnapshot(
        name=server.name,
        errors=(
            Gap(
                section="postgres",
                reason=f"did not finish within its time budget of {budget:g} s",
                fix="raise [fleet] server_timeout_seconds (or --server-timeout), "
                "or scan this server on its own",
            ),
        ),
    )


def _collect_reported(
    config: Config,
    target: Target,
    *,
    progress: _ServerProgress,
    budget: float | None = None,
    **kwargs: Any,
) -> ServerSnapshot:
    """Collect one server of many: say when it starts and ends, and never stop the others."""
    server = target.config
    progress.say(f"{server.name}: started")
    azure: AzureSession | None = kwargs.get("azure")
    calls_before = azure.calls_in_thread() if azure is not None else 0
    try:
        snapshot = collect_server(
            config,
            server,
            progress=progress,
            without_postgres=target.without_postgres,
            fix=target.fix,
            isolated=target.discovered,
            **kwargs,
        )
    except PgwardenError as exc:
        if not target.discovered:
            raise  # a config mistake stops the whole run (exit 2)
        snapshot = ServerSnapshot(
            name=server.name, errors=(Gap(section="postgres", reason=str(exc), fix=None),)
        )
    except ServerOutOfTime:
        snapshot = _out_of_time(server, budget or 0.0)
    except Exception as exc:  # one broken server must not take the others down
        # Never the exception's text: an SDK's can hold a whole response body.
        log.debug("%s: collection failed: %s", server.name, describe_failure(exc))
        snapshot = ServerSnapshot(
            name=server.name,
            errors=(
                Gap(
                    section="postgres",
                    reason=f"collection failed: {describe_failure(exc)}",
                    fix=None,
                ),
            ),
        )
    unread = sum(
        not detail.collected
        for detail in (snapshot.postgres.database_details if snapshot.postgres else ())
    )
    if unread:
        progress.say(f"{server.name}: {unread} database(s) not read")
    calls = (azure.calls_in_thread() - calls_before) if azure is not None else 0
    if calls:
        progress.say(f"{server.name}: {calls} Azure call(s)")
    failed = snapshot.postgres is None and snapshot.azure is None and snapshot.errors
    progress.close(
        f"{server.name}: failed: {snapshot.errors[0].reason}"
        if failed
        else f"{server.name}: finished"
    )
    return snapshot


def collect(
    config: Config,
    *,
    jobs: int = DEFAULT_JOBS,
    server_jobs: int = DEFAULT_SERVER_JOBS,
    progress: Progress | None = None,
    azure: AzureSession | None = None,
    scram_key_reuse: bool = True,
    shard: Shard | None = None,
    server_timeout: float | None = None,
) -> Snapshot:
    """Collect every server of the config (and the ones discovery finds; ``shard``'s part).

    ``azure`` defaults to a session for ``[azure]`` with DefaultAzureCredential,
    opened only when some server needs Azure. ``scram_key_reuse=False`` (the CLI's
    ``--no-scram-key-reuse``) logs in with the password every time, whatever the policy.
    """
    plan = plan_scan(config, azure=azure, shard=shard)
    return collect_plan(
        plan,
        jobs=jobs,
        server_jobs=server_jobs,
        progress=progress,
        scram_key_reuse=scram_key_reuse,
        server_timeout=server_timeout,
    )


def collect_plan(
    plan: ScanPlan,
    *,
    jobs: int = DEFAULT_JOBS,
    server_jobs: int = DEFAULT_SERVER_JOBS,
    progress: Progress | None = None,
    scram_key_reuse: bool = True,
    server_timeout: float | None = None,
) -> Snapshot:
    """Collect the servers of a plan, ``server_jobs`` at a time.

    Each server has ``server_timeout`` seconds (default: ``[fleet]
    server_timeout_seconds`` for a fleet, none otherwise); one that runs over it is
    reported as failed and the scan goes on. A server's failure of any kind (DNS,
    login, timeout, throttling) is that server's error, never the others'.
    """
    config = plan.config
    budget = server_timeout
    if budget is None and config.fleet is not None:
        budget = config.fleet.server_timeout_seconds
    started = datetime.now(UTC)
    if progress:
        progress(f"{len(plan.targets)} server(s) to collect")
    results: dict[int, ServerSnapshot] = {}
    if plan.targets:
        results = _run_targets(plan, jobs, server_jobs, progress, scram_key_reuse, budget)
    return Snapshot(
        tool_version=__version__,
        collected_at=started,
        config_path=config.path,
        servers=tuple(results[index] for index in range(len(plan.targets))),
    )


def _run_targets(
    plan: ScanPlan,
    jobs: int,
    server_jobs: int,
    progress: Progress | None,
    scram_key_reuse: bool,
    budget: float | None,
) -> dict[int, ServerSnapshot]:
    config, targets = plan.config, plan.targets
    reporters = [_ServerProgress(progress, None) for _ in targets]
    started: dict[int, float] = {}

    def run(index: int) -> ServerSnapshot:
        started[index] = time.monotonic()
        if budget is not None:
            reporters[index].deadline = started[index] + budget
        return _collect_reported(
            config,
            targets[index],
            progress=reporters[index],
            budget=budget,
            jobs=jobs,
            azure=plan.azure,
            scram_key_reuse=scram_key_reuse,
        )

    results: dict[int, ServerSnapshot] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(server_jobs, len(targets))))
    overran = False
    try:
        futures: dict[Future[ServerSnapshot], int] = {
            pool.submit(run, index): index for index in range(len(targets))
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                results[futures[future]] = future.result()
            if budget is None:
                continue
            now = time.monotonic()
            for future in list(pending):
                index = futures[future]
                began = started.get(index)
                if began is None or now - began <= budget + OVERRUN_GRACE_S:
                    continue
                # Stuck where it cannot notice its budget (a DNS lookup, an Azure call's
                # retries): report it now; its sessions end within their own timeouts.
                snapshot = _out_of_time(targets[index].config, budget)
                if reporters[index].close(f"{snapshot.name}: failed: {snapshot.errors[0].reason}"):
                    results[index] = snapshot
                    pending.discard(future)
                    overran = True
    finally:
        pool.shutdown(wait=not overran, cancel_futures=True)
    return results
