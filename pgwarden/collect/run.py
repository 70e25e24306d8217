"""Collect a Snapshot of every configured server (the collect half of the pipeline)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pgwarden import __version__
from pgwarden.collect.azure.secret_ref import KEYVAULT_PREFIX
from pgwarden.collect.dsn import check_dsn_source, resolve_dsn
from pgwarden.collect.endpoint import describe_endpoint, endpoint_of
from pgwarden.collect.failure import describe_failure
from pgwarden.collect.postgres.collector import DEFAULT_JOBS, PostgresCollector
from pgwarden.collect.postgres.scram import ScramKeyReuse
from pgwarden.model.config import Config, ServerConfig
from pgwarden.model.errors import CollectorError, ConfigError, ConnectError, PgwardenError
from pgwarden.model.snapshot import AzureSnapshot, Gap, ServerSnapshot, Snapshot

if TYPE_CHECKING:
    # The Azure SDK is imported only when a scan needs Azure: it costs a second of
    # start-up that plain PostgreSQL scans should not pay.
    from pgwarden.collect.azure.cloud import AzureSession

# Progress messages are plain text: "N server(s) to collect" once, then per server
# "SERVER: started", "SERVER: finished" or "SERVER: failed: REASON", with the
# collectors' own "SERVER: ..." lines in between and "SERVER: N Azure call(s)" before
# the end when the server was read in Azure (terminal.ScanProgress counts them).
Progress = Callable[[str], None]
DEFAULT_SERVER_JOBS = 4
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
) -> ServerSnapshot:
    """Collect one server. Config problems raise; an unusable server is recorded.

    ``azure`` reads the server's Azure side when the config asks for it; a server
    found by ``[azure] discover`` has no DSN, so its PostgreSQL side is not collected.
    The logins to each database reuse SCRAM keys derived once unless
    ``scram_key_reuse`` or ``[policy] scram_key_reuse`` is false.
    """
    azure_snapshot = None
    if azure is not None and server.wants_azure():
        from pgwarden.collect.azure.server import collect_azure

        if progress:
            progress(f"{server.name}: reading Azure")
        try:
            azure_snapshot = collect_azure(config, server, azure)
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
    if discovered:
        return ServerSnapshot(
            name=server.name,
            azure=azure_snapshot,
            errors=(
                Gap(
                    section="postgres",
                    reason="found by [azure] discover: no dsn is configured, so its PostgreSQL "
                    "side was not audited",
                    fix="add a [[server]] for it with a dsn",
                ),
            ),
        )
    where = f"{config.path or 'config'}: server[name={server.name!r}].dsn"
    try:
        dsn = resolve_dsn(server.dsn, where, azure=config.azure, session=azure)
    except ConnectError as exc:
        return ServerSnapshot(
            name=server.name,
            azure=azure_snapshot,
            errors=(Gap(section="postgres", reason=str(exc), fix=None),),
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
            errors=(Gap(section="postgres", reason=str(exc), fix=None),),
        )
    return ServerSnapshot(name=server.name, postgres=postgres, azure=azure_snapshot)


def _collect_reported(
    config: Config, server: ServerConfig, *, progress: Progress | None = None, **kwargs: Any
) -> ServerSnapshot:
    """Collect one server of many: say when it starts and ends, and never stop the others."""
    if progress:
        progress(f"{server.name}: started")
    azure: AzureSession | None = kwargs.get("azure")
    calls_before = azure.calls_in_thread() if azure is not None else 0
    try:
        snapshot = collect_server(config, server, progress=progress, **kwargs)
    except PgwardenError:
        raise  # a config mistake stops the whole run (exit 2)
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
    calls = (azure.calls_in_thread() - calls_before) if azure is not None else 0
    if progress and calls:
        progress(f"{server.name}: {calls} Azure call(s)")
    if progress:
        failed = snapshot.postgres is None and snapshot.azure is None and snapshot.errors
        progress(
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
) -> Snapshot:
    """Collect every server of the config (and the ones Azure discovery finds).

    ``azure`` defaults to a session for ``[azure]`` with DefaultAzureCredential,
    opened only when some server needs Azure. ``scram_key_reuse=False`` (the CLI's
    ``--no-scram-key-reuse``) logs in with the password every time, whatever the policy.
    """
    if not config.server and not config.azure.discover:
        raise ConfigError(f"{config.path or 'config'}: no [[server]] is configured (or pass --dsn)")
    for server in config.server:
        # Check every DSN source first, so a config mistake stops the run before any I/O.
        check_dsn_source(
            server.dsn,
            f"{config.path or 'config'}: server[name={server.name!r}].dsn",
            azure=config.azure,
        )
    needs_azure = bool(config.azure.discover) or any(
        s.wants_azure() or (s.dsn or "").startswith(KEYVAULT_PREFIX) for s in config.server
    )
    if azure is None and needs_azure:
        from pgwarden.collect.azure.cloud import open_session

        azure = open_session(config.azure)
    started = datetime.now(UTC)
    targets = [(server, False) for server in config.server]
    if azure is not None and config.azure.discover:
        from pgwarden.collect.azure.server import discover_servers

        targets += [(found.config, True) for found in discover_servers(config, azure)]
    if not targets:
        raise ConfigError(f"{config.path or 'config'}: [azure] discover found no Flexible Server")
    if progress:
        progress(f"{len(targets)} server(s) to collect")
    with ThreadPoolExecutor(max_workers=max(1, min(server_jobs, len(targets)))) as pool:
        servers = list(
            pool.map(
                lambda target: _collect_reported(
                    config,
                    target[0],
                    jobs=jobs,
                    progress=progress,
                    azure=azure,
                    discovered=target[1],
                    scram_key_reuse=scram_key_reuse,
                ),
                targets,
            )
        )
    return Snapshot(
        tool_version=__version__,
        collected_at=started,
        config_path=config.path,
        servers=tuple(servers),
    )
