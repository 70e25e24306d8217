"""The ``pgwarden`` command line: parse options, call the core, write outputs, exit.

One error handler maps every known error to one line on stderr and the documented
exit code: 0 clean, 1 violations, 2 usage or config error, 3 incomplete scan.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from pgwarden import __version__
from pgwarden.cli.terminal import Console, diff_lines, runs_table, summary_table
from pgwarden.collect.run import collect
from pgwarden.engine import evaluate, gate
from pgwarden.gate.baseline import apply_baseline, create_baseline, load_baseline
from pgwarden.gate.history import HistoryStore, diff_json, run_json
from pgwarden.gate.waivers import apply_waivers, load_waivers, waiver_warnings
from pgwarden.gcpause import without_cycle_collection
from pgwarden.model.config import Config, ServerConfig, load_config
from pgwarden.model.errors import (
    EXIT_USAGE,
    ConfigError,
    PgwardenError,
    UsageError,
    read_input,
)
from pgwarden.model.results import Results, load_results
from pgwarden.model.snapshot import Snapshot
from pgwarden.reports.registry import RENDERERS
from pgwarden.rules.registry import find_rule, load_rules, select_rules

DEFAULT_CONFIG = "pgwarden.toml"
FAIL_ON = click.Choice(["critical", "high", "medium", "low", "none"], case_sensitive=False)
F = TypeVar("F", bound=Callable[..., Any])
FORMAT_NAMES = {
    "json": "results JSON",
    "sarif": "SARIF 2.1.0 log",
    "html": "HTML report",
    "junit": "JUnit XML",
    "markdown": "Markdown summary",
}
DSN_HELP = (
    "connection string: a literal DSN/URI, env:NAME or keyvault:VAULT/SECRET; "
    "password=entra logs in with a Microsoft Entra token"
)
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
    """Write an output atomically (``-`` is stdout), so no half file looks complete.

    A regular file is written beside its target and renamed over it; through a symlink,
    the file it points to is replaced and the link kept. Anything else that exists (a
    device such as ``/dev/null``, a FIFO) is written into, never replaced.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        if target.exists() and not target.is_file():
            with target.open("wb") as stream:
                stream.write(data)
            return
        target = target.resolve() if target.is_symlink() else target
        tmp = target.with_name(f".{target.name}.pgwarden-tmp")
        try:
            tmp.write_bytes(data)
            tmp.replace(target)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _load_config(config_path: str | None, dsn: str | None) -> tuple[Config, bytes | None]:
    """The config file (``--config`` or ./pgwarden.toml), with ``--dsn`` applied."""
    path = Path(config_path) if config_path else Path(DEFAULT_CONFIG)
    raw: bytes | None = None
    if config_path or path.exists():
        config = load_config(path)
        raw = path.read_bytes()
    else:
        config = Config()
    if dsn is None and not config.server and not config.azure.discover and _libpq_environment():
        # No config and no --dsn: libpq's own environment (PGHOST, PGUSER, PGPASSFILE, …)
        # says where to connect, as it does for psql.
        dsn = ""
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


LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")


def _libpq_environment() -> bool:
    return any(os.environ.get(name) for name in LIBPQ_VARIABLES)


def _server_name(dsn: str) -> str:
    """A server name from the DSN's host, without reading a secret to find it."""
    from pgwarden.collect.dsn import check_dsn_source
    from pgwarden.collect.endpoint import endpoint_of, server_name_of

    literal = check_dsn_source(dsn, "--dsn")
    if literal is None:  # keyvault: the host is inside the secret
        return "server"
    return server_name_of(endpoint_of(literal))


def _history_option(*, required: bool = False, help: str) -> Callable[[F], F]:
    return click.option(
        "--history",
        "history_path",
        envvar="PGWARDEN_HISTORY",
        required=required,
        metavar="PATH|DSN",
        help=f"{help} [env PGWARDEN_HISTORY]",
    )


def _output_options(func: F) -> F:
    for name in reversed(RENDERERS):
        func = click.option(
            f"--{name}",
            f"out_{name}",
            metavar="PATH",
            help=f"write the {FORMAT_NAMES.get(name, name)} to PATH ('-' for stdout)",
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
    # MSAL logs whole token responses at DEBUG.
    for noisy in ("azure", "msal", "urllib3", "psycopg"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.command()
@click.option(
    "--config", "config_path", metavar="FILE", help=f"tenancy map (default ./{DEFAULT_CONFIG})"
)
@click.option("--dsn", metavar="DSN", help=DSN_HELP)
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
@click.option(
    "--waivers", "waivers_path", metavar="FILE", help="TOML waivers: owned, expiring exceptions"
)
@click.option("--baseline", "baseline_path", metavar="FILE", help="fail only on findings not in it")
@_history_option(help="record this run in a SQLite file or postgresql:// database")
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
    waivers_path: str | None,
    baseline_path: str | None,
    history_path: str | None,
    quiet: bool,
    **kwargs: Any,
) -> None:
    """Scan servers (or a snapshot) and report violations."""
    outputs = _collect_outputs(kwargs)
    with _errors(), ExitStack() as stack:
        config, raw = _load_config(config_path, dsn)
        rules = select_rules(load_rules(rules_dir), include, exclude)
        waivers = load_waivers(Path(waivers_path)) if waivers_path else None
        baseline = load_baseline(Path(baseline_path)) if baseline_path else None
        # Opened before the scan, so a bad store stops the run before any server is touched.
        store = stack.enter_context(HistoryStore.open(history_path)) if history_path else None
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
        del snapshot  # the results carry what renderers need; free the catalog copy first
        if waivers is not None:
            results = apply_waivers(results, waivers, today=started.date())
        if baseline is not None:
            results = apply_baseline(results, baseline, path=str(baseline_path))
        if store is not None:
            results = store.record(results)
        wrote = _render_outputs(results, outputs)
        if results.waivers is not None:
            for line in waiver_warnings(results.waivers):
                console.warn(line)
        if not quiet and not (wrote and "-" in outputs.values()):
            console.print(summary_table(results))
        sys.exit(gate(results, (fail_on or config.policy.fail_on).lower()))


def read_snapshot(path: Path) -> Snapshot:
    """Load a snapshot file; a bad one is one clear line.

    Parsed and validated in one pass (pydantic's own JSON parser): at 1,000 databases
    that takes under half the time of ``json.loads`` followed by validation.
    """
    text = read_input(path)
    try:
        return Snapshot.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            reason = first.get("ctx", {}).get("error") or first["msg"]
            raise ConfigError(f"{path}: not valid JSON: {reason}") from None
        place = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: not a pgwarden snapshot: {place}: {first['msg']}") from None


@cli.command("collect")
@click.option(
    "--config", "config_path", metavar="FILE", help=f"tenancy map (default ./{DEFAULT_CONFIG})"
)
@click.option("--dsn", metavar="DSN", help=DSN_HELP)
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


def _read_results(path: Path) -> Results:
    return load_results(read_input(path), str(path))


@cli.command()
@click.argument("results_path", metavar="RESULTS.json")
@_output_options
def report(results_path: str, **kwargs: Any) -> None:
    """Re-render a saved results document in other formats."""
    outputs = _collect_outputs(kwargs)
    with _errors():
        results = _read_results(Path(results_path))
        if not _render_outputs(results, outputs):
            raise UsageError(f"name at least one output: {', '.join('--' + n for n in RENDERERS)}")


@cli.command("rules")
@click.option("--json", "as_json", is_flag=True, help="machine-readable catalogue")
@click.option("--rules-dir", multiple=True, type=click.Path(path_type=Path))
def rules_cmd(as_json: bool, rules_dir: tuple[Path, ...]) -> None:
    """List the rule catalogue, built-in and plug-in."""
    from pgwarden.engine import rule_info

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
@click.option("--dsn", metavar="DSN", help=DSN_HELP)
@click.option(
    "--name", metavar="NAME", help="server name (default: the Azure resource's, else the host's)"
)
@click.option("-o", "--output", default="-", metavar="FILE", help="where to write (default stdout)")
@click.option(
    "--azure-subscription",
    metavar="ID",
    help="read the admin from ARM and the apps' DSN secrets from the subscription's vaults",
)
@click.option("--resource-group", metavar="NAME", help="the server's (default: found by name)")
@click.option(
    "--server-name", metavar="NAME", help="the server's ARM name (default: --name, else the host)"
)
@click.option(
    "--vault", "vaults", multiple=True, metavar="NAME", help="look only in this vault (repeatable)"
)
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="an existing map: its [azure], sampling, and the server's dsn, azure and vaults",
)
@click.option("--json", "as_json", is_flag=True, help="the guesses and review list as JSON")
def init(output: str, as_json: bool, **options: Any) -> None:
    """Draft a tenancy map from a live server (every guess is marked for review)."""
    from pgwarden.cli.draft_map import InitRequest, draft_map
    from pgwarden.cli.draft_review import review_lines

    with _errors():
        if output != "-" and Path(output).exists():
            raise UsageError(f"{output} exists; not overwriting it")
        draft = draft_map(InitRequest.of_options(**options))
        if not (as_json and output == "-"):
            _write(output, draft.text)
        if as_json:
            document = draft.to_json(include_text=output == "-")
            click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            click.echo("\n".join(review_lines(draft.review)), err=True)
        if output != "-":
            click.echo(f"draft written to {output}: review every line marked REVIEW", err=True)


@cli.command()
@click.option(
    "--output-dir", default="pgwarden-demo", show_default=True, type=click.Path(path_type=Path)
)
def demo(output_dir: Path) -> None:
    """Scan a throwaway local PostgreSQL shaped like a shared Azure server."""
    from pgwarden.cli.demo import run_demo

    with _errors():
        code = run_demo(output_dir, Console())
        sys.exit(code)


@cli.group("baseline")
def baseline_group() -> None:
    """Accept today's findings, so the gate fails on new ones only."""


@baseline_group.command("create")
@click.argument("results_path", metavar="RESULTS.json")
@click.option("-o", "--output", required=True, metavar="BASELINE.json", help="where to write")
def baseline_create(results_path: str, output: str) -> None:
    """Record the failing findings of a results document as a baseline."""
    with _errors():
        results = _read_results(Path(results_path))
        made = create_baseline(results, now=datetime.now(UTC), source=results_path)
        _write(output, made.to_json())
        if not results.scan.complete:
            click.echo(
                "pgwarden: warning: that scan was incomplete: what its rules in error could "
                "not see is not in the baseline",
                err=True,
            )
        if output != "-":
            click.echo(
                f"baseline of {len(made.findings)} failing finding(s) written to {output}",
                err=True,
            )


@cli.command("history")
@_history_option(required=True, help="the history database (SQLite file or postgresql://)")
@click.option("--server", metavar="NAME", help="only runs that scanned this server")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
def history_cmd(history_path: str, server: str | None, limit: int, as_json: bool) -> None:
    """List recorded runs, newest first."""
    with _errors(), HistoryStore.open(history_path, create=False) as store:
        runs = store.runs(server=server, limit=limit)
        if as_json:
            click.echo(json.dumps([run_json(r) for r in runs], indent=2))
            return
        Console().print(runs_table(runs), wide=True)


@cli.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@_history_option(required=True, help="the history database (SQLite file or postgresql://)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
def diff_cmd(run_a: str, run_b: str, history_path: str, as_json: bool) -> None:
    """What changed from RUN_A to RUN_B (run ids, latest, or latest~N)."""
    with _errors(), HistoryStore.open(history_path, create=False) as store:
        change = store.diff(store.run(run_a), store.run(run_b))
        if as_json:
            click.echo(json.dumps(diff_json(change), indent=2))
            return
        click.echo("\n".join(diff_lines(change)))


def run(args: list[str] | None = None) -> int:
    """Run the command line (``args``, or the process's own) and return its exit code."""
    try:
        cli.main(args=args, standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        click.echo(exc.code, err=True)  # what sys.exit("message") would print
        return 1
    except PgwardenError as exc:  # pragma: no cover - every command has its own handler
        click.echo(f"pgwarden: error: {exc}", err=True)
        return EXIT_USAGE
    return 0


def leave(code: int) -> NoReturn:
    """End the process with ``code`` once every output is flushed, without freeing the heap.

    Every file pgwarden writes is closed and every session ended before the command
    returns; what an ordinary exit still does is free each object one by one (after a
    1,000-database scan, a few hundred thousand of them: about 0.2 s). Flushed by hand:
    stdout, stderr and the log handlers.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            code = code or 1
    os._exit(code)


def main() -> NoReturn:
    """Console-script entry point: one command, then the process ends."""
    without_cycle_collection()
    leave(run())
