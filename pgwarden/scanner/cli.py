"""The ``pgwarden`` command line: parse options, call the core, write outputs, exit.

One error handler maps every known error to one line on stderr and the documented
exit code: 0 clean, 1 violations, 2 usage or config error, 3 incomplete scan.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from pgwarden import __version__
from pgwarden.reports.registry import RENDERERS
from pgwarden.scanner.config import Config, ServerConfig, load_config
from pgwarden.scanner.engine import evaluate, gate
from pgwarden.scanner.errors import EXIT_USAGE, ConfigError, PgwardenError, UsageError
from pgwarden.scanner.model import Snapshot
from pgwarden.scanner.registry import find_rule, load_rules, select_rules
from pgwarden.scanner.results import Results, load_results
from pgwarden.scanner.scan import collect
from pgwarden.scanner.terminal import Console, summary_table

DEFAULT_CONFIG = "pgwarden.toml"
FAIL_ON = click.Choice(["critical", "high", "medium", "low", "none"], case_sensitive=False)
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("pgwarden")


@contextmanager
def _errors() -> Iterator[None]:
    """Known errors become one line and their exit code; nothing else is swallowed."""
    try:
        yield
    except PgwardenError as exc:
        click.echo(f"pgwarden: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("pgwarden: interrupted; no results were written", err=True)
        sys.exit(130)


def _write(path: str, content: str | bytes) -> None:
    """Write an output atomically (``-`` is stdout), so no half file looks complete."""
    if path == "-":
        if isinstance(content, bytes):
            sys.stdout.buffer.write(content)
        else:
            sys.stdout.write(content)
        sys.stdout.flush()
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.pgwarden-tmp")
    try:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _load_config(config_path: str | None, dsn: str | None) -> tuple[Config, bytes | None]:
    """The config file (``--config`` or ./pgwarden.toml), with ``--dsn`` applied."""
    path = Path(config_path) if config_path else Path(DEFAULT_CONFIG)
    raw: bytes | None = None
    if config_path or path.exists():
        config = load_config(path)
        raw = path.read_bytes()
    else:
        config = Config()
    if dsn is not None:
        if len(config.server) > 1:
            raise UsageError("--dsn applies to a config with one server; this one has several")
        base = config.server[0] if config.server else ServerConfig(name=_server_name(dsn))
        try:
            server = ServerConfig.model_validate({**base.model_dump(), "dsn": dsn})
        except ValidationError:
            raise UsageError("--dsn: not a usable DSN") from None
        config = config.model_copy(update={"server": (server,)})
    return config, raw


def _server_name(dsn: str) -> str:
    from pgwarden.scanner.dsn import endpoint_of, resolve_dsn

    endpoint = endpoint_of(resolve_dsn(dsn, "--dsn"))
    host = endpoint.host or "localhost"
    return host.split(".")[0] if not host.startswith("/") else "localhost"


def _output_options(func: F) -> F:
    for name in reversed(RENDERERS):
        func = click.option(
            f"--{name}",
            f"out_{name}",
            metavar="PATH",
            help=f"write the {name.upper()} report to PATH ('-' for stdout)",
        )(func)
    return func


def _render_outputs(results: Results, outputs: dict[str, str | None]) -> bool:
    wrote = False
    for name, path in outputs.items():
        if path is None:
            continue
        renderer, _default = RENDERERS[name]
        _write(path, renderer(results))
        wrote = True
    return wrote


def _collect_outputs(kwargs: dict[str, Any]) -> dict[str, str | None]:
    return {name: kwargs.pop(f"out_{name}") for name in RENDERERS}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pgwarden")
@click.option("-v", "--verbose", count=True, help="more log output on stderr (-vv: debug)")
def cli(verbose: int) -> None:
    """Audit shared PostgreSQL servers against what their owners meant."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="pgwarden: %(levelname)s: %(message)s")
    # Third-party libraries log request details at DEBUG; keep them at WARNING.
    for noisy in ("azure", "urllib3", "psycopg"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.command()
@click.option(
    "--config", "config_path", metavar="FILE", help=f"tenancy map (default ./{DEFAULT_CONFIG})"
)
@click.option("--dsn", metavar="DSN", help="connection string (literal or env:NAME)")
@click.option("--snapshot", "snapshot_path", metavar="FILE", help="evaluate a collected snapshot")
@_output_options
@click.option("--fail-on", type=FAIL_ON, help="lowest severity that fails (default: policy)")
@click.option("--rules", "include", multiple=True, metavar="GLOB", help="only these rule ids")
@click.option("--skip-rules", "exclude", multiple=True, metavar="GLOB", help="not these rule ids")
@click.option(
    "--rules-dir", multiple=True, type=click.Path(path_type=Path), help="load rule modules"
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="parallel connections per server",
)
@click.option("-q", "--quiet", is_flag=True, help="no progress and no summary")
def scan(
    config_path: str | None,
    dsn: str | None,
    snapshot_path: str | None,
    fail_on: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    rules_dir: tuple[Path, ...],
    jobs: int,
    quiet: bool,
    **kwargs: Any,
) -> None:
    """Scan servers (or a snapshot) and report violations."""
    outputs = _collect_outputs(kwargs)
    with _errors():
        config, raw = _load_config(config_path, dsn)
        rules = select_rules(load_rules(rules_dir), include, exclude)
        console = Console(quiet=quiet)
        started = datetime.now(UTC)
        if snapshot_path is not None:
            if dsn is not None:
                raise UsageError("--snapshot and --dsn exclude each other")
            snapshot = read_snapshot(Path(snapshot_path))
        else:
            with console.progress("collecting") as progress:
                snapshot = collect(config, jobs=jobs, progress=progress)
            if all(s.postgres is None and s.azure is None for s in snapshot.servers):
                reasons = "; ".join(
                    f"{s.name}: {e.reason}" for s in snapshot.servers for e in s.errors
                )
                raise UsageError(f"nothing was scanned: {reasons}")
        results = evaluate(
            snapshot,
            config,
            rules,
            started_at=started,
            config_bytes=raw,
            snapshot_path=snapshot_path,
        )
        wrote = _render_outputs(results, outputs)
        if not quiet and not (wrote and "-" in outputs.values()):
            console.print(summary_table(results))
        sys.exit(gate(results, (fail_on or config.policy.fail_on).lower()))


def read_snapshot(path: Path) -> Snapshot:
    """Load a snapshot file; a bad one is one clear line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    try:
        return Snapshot.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: not a pgwarden snapshot: {place}: {first['msg']}") from None


@cli.command("collect")
@click.option(
    "--config", "config_path", metavar="FILE", help=f"tenancy map (default ./{DEFAULT_CONFIG})"
)
@click.option("--dsn", metavar="DSN", help="connection string (literal or env:NAME)")
@click.option("-o", "--output", required=True, metavar="SNAPSHOT.json", help="where to write")
@click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("-q", "--quiet", is_flag=True)
def collect_cmd(
    config_path: str | None, dsn: str | None, output: str, jobs: int, quiet: bool
) -> None:
    """Collect a snapshot (no secrets in it) for offline evaluation."""
    with _errors():
        config, _raw = _load_config(config_path, dsn)
        console = Console(quiet=quiet)
        with console.progress("collecting") as progress:
            snapshot = collect(config, jobs=jobs, progress=progress)
        _write(output, snapshot.to_json())
        for server in snapshot.servers:
            for error in server.errors:
                click.echo(f"pgwarden: warning: {server.name}: {error.reason}", err=True)
        if not quiet and output != "-":
            click.echo(
                f"snapshot of {len(snapshot.servers)} server(s) written to {output}", err=True
            )


@cli.command()
@click.argument("results_path", metavar="RESULTS.json")
@_output_options
def report(results_path: str, **kwargs: Any) -> None:
    """Re-render a saved results document in other formats."""
    outputs = _collect_outputs(kwargs)
    with _errors():
        path = Path(results_path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        results = load_results(text, str(path))
        if not _render_outputs(results, outputs):
            raise UsageError(f"name at least one output: {', '.join('--' + n for n in RENDERERS)}")


@cli.command("rules")
@click.option("--json", "as_json", is_flag=True, help="machine-readable catalogue")
@click.option("--rules-dir", multiple=True, type=click.Path(path_type=Path))
def rules_cmd(as_json: bool, rules_dir: tuple[Path, ...]) -> None:
    """List the rule catalogue, built-in and plug-in."""
    from pgwarden.scanner.engine import rule_info

    with _errors():
        infos = [rule_info(entry) for entry in load_rules(rules_dir)]
        if as_json:
            click.echo(json.dumps([i.model_dump(exclude_none=True) for i in infos], indent=2))
            return
        Console().print(_rules_table(infos))


def _rules_table(infos: list[Any]) -> Any:
    from rich.table import Table

    table = Table(title="pgwarden rules", show_lines=False)
    for column in ("id", "severity", "title", "source"):
        table.add_column(column)
    for info in infos:
        table.add_row(info.id, info.severity, info.title, info.source)
    return table


@cli.command()
@click.argument("rule_id")
@click.option("--rules-dir", multiple=True, type=click.Path(path_type=Path))
def explain(rule_id: str, rules_dir: tuple[Path, ...]) -> None:
    """Rationale, what is checked, and the fix for one rule."""
    with _errors():
        entry = find_rule(load_rules(rules_dir), rule_id)
        rule = entry.rule
        doc = rule.doc()
        lines = [
            f"{rule.id} — {doc.title}",
            f"severity: {rule.severity}    family: {rule.family()}    source: {entry.source}",
        ]
        if rule.frameworks:
            lines.append(f"frameworks: {', '.join(rule.frameworks)}")
        lines += ["", "Why it matters", _indent(doc.rationale)]
        if doc.violation:
            lines += ["", "What is checked", _indent(doc.violation)]
        lines += ["", "How to fix it", _indent(doc.fix)]
        lines.append(f"\nneeds: {', '.join(rule.requires)}")
        click.echo("\n".join(lines))


def _indent(text: str) -> str:
    import textwrap

    paragraphs = text.split("\n\n")
    return "\n\n".join(
        textwrap.fill(p, 88, initial_indent="  ", subsequent_indent="  ") for p in paragraphs
    )


@cli.command()
@click.option("--dsn", required=True, metavar="DSN", help="connection string (literal or env:NAME)")
@click.option("--name", metavar="NAME", help="server name (default: from the host)")
@click.option("-o", "--output", default="-", metavar="FILE", help="where to write (default stdout)")
def init(dsn: str, name: str | None, output: str) -> None:
    """Draft a tenancy map from a live server (every guess is marked for review)."""
    from pgwarden.scanner.init import draft_config

    with _errors():
        text = draft_config(dsn, name)
        if output != "-" and Path(output).exists():
            raise UsageError(f"{output} exists; not overwriting it")
        _write(output, text)
        if output != "-":
            click.echo(f"draft written to {output}: review every line marked REVIEW", err=True)


@cli.command()
@click.option(
    "--output-dir", default="pgwarden-demo", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--keep-seconds", default=0.0, hidden=True)
def demo(output_dir: Path, keep_seconds: float) -> None:
    """Scan a throwaway local PostgreSQL shaped like a shared Azure server."""
    from pgwarden.scanner.demo import run_demo

    with _errors():
        code = run_demo(output_dir, Console())
        sys.exit(code)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(standalone_mode=True)
    except PgwardenError as exc:  # pragma: no cover - every command has its own handler
        click.echo(f"pgwarden: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
