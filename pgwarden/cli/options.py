"""Options several commands share: the config, the DSN, the report outputs, the history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pgwarden.collect.plan import DEFAULT_SERVER_JOBS
from pgwarden.model.errors import UsageError
from pgwarden.model.shards import Shard, parse_shard
from pgwarden.reports.registry import RENDERERS

DEFAULT_CONFIG = "pgwarden.toml"
FAIL_ON = click.Choice(["critical", "high", "medium", "low", "none"], case_sensitive=False)
F = TypeVar("F", bound=Callable[..., Any])
FORMAT_NAMES = {
    "json": "results JSON",
    "sarif": "SARIF 2.1.0 log",
    "html": "HTML report",
    "junit": "JUnit XML",
    "markdown": "Markdown summary",
    "csv": "CSV of the findings (one row each)",
}
DSN_HELP = (
    "connection string: a literal DSN/URI, env:NAME or keyvault:VAULT/SECRET; "
    "password=entra logs in with a Microsoft Entra token"
)
NO_SCRAM_KEY_REUSE_HELP = (
    "log in to every database with the password, not with SCRAM keys derived once "
    "(overrides [policy] scram_key_reuse)"
)


def config_option(func: F) -> F:
    """``--config FILE``: the tenancy map (default ./pgwarden.toml)."""
    return click.option(
        "--config",
        "config_path",
        metavar="FILE",
        help=f"tenancy map (default ./{DEFAULT_CONFIG})",
    )(func)


def history_option(*, required: bool = False, help: str) -> Callable[[F], F]:
    """``--history PATH|DSN`` (or ``PGWARDEN_HISTORY``): a SQLite file or PostgreSQL DSN."""
    return click.option(
        "--history",
        "history_path",
        envvar="PGWARDEN_HISTORY",
        required=required,
        metavar="PATH|DSN",
        help=f"{help} [env PGWARDEN_HISTORY]",
    )


def output_options(func: F) -> F:
    """One ``--FORMAT PATH`` option per report format, in the renderers' order."""
    for name in reversed(RENDERERS):
        func = click.option(
            f"--{name}",
            f"out_{name}",
            metavar="PATH",
            help=f"write the {FORMAT_NAMES.get(name, name)} to PATH ('-' for stdout)",
        )(func)
    return func


def take_outputs(kwargs: dict[str, Any]) -> dict[str, str | None]:
    """Remove the ``output_options`` values from a command's keyword arguments."""
    return {name: kwargs.pop(f"out_{name}") for name in RENDERERS}


def output_flags(outputs: dict[str, str | None]) -> dict[str, str | None]:
    """``take_outputs``' paths by the option that named them (``--json``), for
    ``outputs.check_outputs``."""
    return {f"--{name}": path for name, path in outputs.items()}


def _shard(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Shard | None:
    if value is None:
        return None
    try:
        return parse_shard(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc).removeprefix("--shard ")) from None


def fleet_options(func: F) -> F:
    """``--shard I/N``, ``--servers-parallel N`` and ``--server-timeout S``: many servers."""
    func = click.option(
        "--server-timeout",
        type=click.FloatRange(1, 86_400),
        metavar="SECONDS",
        help="time budget of each server; one that runs over it is reported as failed "
        "(default: [fleet] server_timeout_seconds with a fleet, else none)",
    )(func)
    func = click.option(
        "--servers-parallel",
        type=click.IntRange(1, 256),
        default=DEFAULT_SERVER_JOBS,
        show_default=True,
        metavar="N",
        help="servers collected at the same time",
    )(func)
    return click.option(
        "--shard",
        callback=_shard,
        metavar="I/N",
        help="collect only shard I of N (I from 0): each server belongs to exactly one "
        "shard, by a stable hash of its ARM id (else its name)",
    )(func)
