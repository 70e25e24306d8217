"""Collect a Snapshot of every configured server (the collect half of the pipeline)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from pgwarden import __version__
from pgwarden.scanner.collectors.base import CollectorError
from pgwarden.scanner.collectors.postgres import DEFAULT_JOBS, PostgresCollector
from pgwarden.scanner.config import Config, ServerConfig
from pgwarden.scanner.dsn import resolve_dsn
from pgwarden.scanner.errors import ConfigError
from pgwarden.scanner.model import Gap, ServerSnapshot, Snapshot

Progress = Callable[[str], None]
DEFAULT_SERVER_JOBS = 4


def collect_server(
    config: Config,
    server: ServerConfig,
    *,
    jobs: int = DEFAULT_JOBS,
    progress: Progress | None = None,
) -> ServerSnapshot:
    """Collect one server. Config problems raise; an unusable server is recorded."""
    where = f"{config.path or 'config'}: server[name={server.name!r}].dsn"
    dsn = resolve_dsn(server.dsn, where)
    collector = PostgresCollector(
        dsn,
        jobs=jobs,
        session_samples=config.policy.session_samples,
        session_window_seconds=config.policy.session_window_seconds,
        progress=(lambda message: progress(f"{server.name}: {message}")) if progress else None,
    )
    try:
        postgres = collector.collect()
    except CollectorError as exc:
        return ServerSnapshot(
            name=server.name,
            errors=(Gap(section="postgres", reason=str(exc), fix=None),),
        )
    return ServerSnapshot(name=server.name, postgres=postgres)


def collect(
    config: Config,
    *,
    jobs: int = DEFAULT_JOBS,
    server_jobs: int = DEFAULT_SERVER_JOBS,
    progress: Progress | None = None,
) -> Snapshot:
    """Collect every server of the config, several at a time."""
    if not config.server:
        raise ConfigError(f"{config.path or 'config'}: no [[server]] is configured (or pass --dsn)")
    for server in config.server:
        # Resolve every DSN first, so a config mistake stops the run before any I/O.
        resolve_dsn(server.dsn, f"{config.path or 'config'}: server[name={server.name!r}].dsn")
    started = datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=max(1, min(server_jobs, len(config.server)))) as pool:
        servers = list(
            pool.map(
                lambda s: collect_server(config, s, jobs=jobs, progress=progress), config.server
            )
        )
    return Snapshot(
        tool_version=__version__,
        collected_at=started,
        config_path=config.path,
        servers=tuple(servers),
    )
