"""``pgwarden scan``: collect (or load a snapshot), evaluate, gate, report, exit."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.inputs import load_scan_config, read_snapshot
from pgwarden.cli.listing import print_findings
from pgwarden.cli.options import (
    DSN_HELP,
    FAIL_ON,
    FORMAT_NAMES,
    NO_SCRAM_KEY_REUSE_HELP,
    config_option,
    history_option,
    output_options,
    take_outputs,
)
from pgwarden.cli.outputs import render_outputs
from pgwarden.cli.terminal import Console
from pgwarden.collect.run import collect
from pgwarden.engine import evaluate
from pgwarden.gate.baseline import load_baseline
from pgwarden.gate.chain import apply_gate
from pgwarden.gate.history.store import HistoryStore
from pgwarden.gate.waivers import load_waivers, waiver_warnings
from pgwarden.model.config import FailOn
from pgwarden.model.errors import UsageError
from pgwarden.rules.registry import load_rules, select_rules


@click.command()
@config_option
@click.option("--dsn", metavar="DSN", help=DSN_HELP)
@click.option("--snapshot", "snapshot_path", metavar="FILE", help="evaluate a collected snapshot")
@output_options
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
@history_option(help="record this run in a SQLite file or postgresql:// database")
@click.option("-q", "--quiet", is_flag=True, help="no progress and no summary")
@click.option("--no-scram-key-reuse", is_flag=True, help=NO_SCRAM_KEY_REUSE_HELP)
def scan(
    config_path: str | None,
    dsn: str | None,
    snapshot_path: str | None,
    fail_on: FailOn | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    rules_dir: tuple[Path, ...],
    jobs: int,
    waivers_path: str | None,
    baseline_path: str | None,
    history_path: str | None,
    quiet: bool,
    no_scram_key_reuse: bool,
    **kwargs: Any,
) -> None:
    """Scan servers (or a snapshot) and report violations."""
    outputs = take_outputs(kwargs)
    with one_line_errors(), ExitStack() as stack:
        config, raw = load_scan_config(config_path, dsn)
        rules = select_rules(load_rules(rules_dir), include, exclude)
        waivers = load_waivers(Path(waivers_path)) if waivers_path else None
        baseline = load_baseline(baseline_path) if baseline_path else None
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
                snapshot = collect(
                    config,
                    jobs=jobs,
                    progress=progress,
                    scram_key_reuse=not no_scram_key_reuse,
                )
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
        outcome = apply_gate(
            results,
            fail_on=fail_on or config.policy.fail_on,
            waivers=waivers,
            baseline=baseline,
            history=store,
            today=started.date(),
        )
        results = outcome.results
        wrote = render_outputs(results, outputs)
        if results.waivers is not None:
            for line in waiver_warnings(results.waivers):
                console.warn(line)
        if not quiet and not (wrote and "-" in outputs.values()):
            # With report files, a summary that does not grow with the findings; without
            # any, the terminal is the report and lists every finding.
            written = [(FORMAT_NAMES.get(n, n), path) for n, path in outputs.items() if path]
            print_findings(console, results, written)
        sys.exit(outcome.exit_code)
