"""``pgwarden scan``: collect (or load a snapshot), evaluate, gate, report, exit.

What only some runs need (the evidence bundle and its signing, waivers, a baseline,
the history, a shard's mark, the compliance table) is imported where a run asks for
it: every scan starts without it.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.inputs import (
    load_scan_config,
    nothing_collected,
    over_privileged,
    read_snapshot,
)
from pgwarden.cli.listing import print_compliance, print_findings
from pgwarden.cli.options import (
    DSN_HELP,
    FAIL_ON,
    FORMAT_NAMES,
    NO_SCRAM_KEY_REUSE_HELP,
    config_option,
    fleet_options,
    history_option,
    output_flags,
    output_options,
    take_outputs,
)
from pgwarden.cli.outputs import check_outputs, render_outputs, write_output
from pgwarden.cli.terminal import Console
from pgwarden.collect.plan import plan_scan
from pgwarden.collect.run import collect_plan
from pgwarden.engine import evaluate
from pgwarden.gate.chain import apply_gate
from pgwarden.model.config import FailOn
from pgwarden.model.errors import UsageError
from pgwarden.model.fleet import fleet_config_for_snapshot
from pgwarden.model.shards import Shard
from pgwarden.rules.registry import load_rules, select_rules

# Waiver warnings shown when report files were written (the results list every one).
MAX_WAIVER_WARNINGS = 20


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
@click.option(
    "--include-passed",
    is_flag=True,
    help="also record each rule and resource found compliant, with the evidence (status pass)",
)
@click.option(
    "--evidence-bundle",
    "bundle_path",
    metavar="PATH",
    help="write one zip of the results, snapshot, every report and the config, with a manifest",
)
@click.option(
    "--signing-key",
    "signing_key_path",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="sign the bundle's manifest with this Ed25519 private key (PEM or OpenSSH)",
)
@fleet_options
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
    include_passed: bool,
    bundle_path: str | None,
    signing_key_path: Path | None,
    shard: Shard | None,
    servers_parallel: int,
    server_timeout: float | None,
    **kwargs: Any,
) -> None:
    """Scan servers (or a snapshot) and report violations."""
    outputs = take_outputs(kwargs)
    with one_line_errors(), ExitStack() as stack:
        check_outputs({**output_flags(outputs), "--evidence-bundle": bundle_path})
        if signing_key_path is not None and bundle_path is None:
            raise UsageError("--signing-key signs an evidence bundle: add --evidence-bundle PATH")
        signing_key = None
        if signing_key_path is not None:
            from pgwarden.evidence.signing import load_signing_key

            signing_key = load_signing_key(signing_key_path)
        config, raw = load_scan_config(config_path, dsn)
        rules = select_rules(load_rules(rules_dir), include, exclude)
        waivers = None
        if waivers_path:
            from pgwarden.gate.waivers import load_waivers

            waivers = load_waivers(Path(waivers_path))
        baseline = None
        if baseline_path:
            from pgwarden.gate.baseline import load_baseline

            baseline = load_baseline(baseline_path)
        store = None
        if history_path:
            from pgwarden.gate.history.store import HistoryStore

            # Opened before the scan, so a bad store stops the run before any server is touched.
            store = stack.enter_context(HistoryStore.open(history_path))
        console = Console(quiet=quiet)
        started = datetime.now(UTC)
        if snapshot_path is not None:
            if dsn is not None:
                raise UsageError("--snapshot and --dsn exclude each other")
            if shard is not None:
                raise UsageError("--shard applies to a live scan, not to --snapshot")
            snapshot = read_snapshot(Path(snapshot_path))
            config = fleet_config_for_snapshot(config, snapshot)
        else:
            plan = plan_scan(config, shard=shard)
            config = plan.config
            if plan.fleet is not None:
                part = f"; shard {shard}: {len(plan.targets)}" if shard is not None else ""
                console.note(
                    f"pgwarden: Resource Graph listed {plan.fleet.listed} server(s) in "
                    f"{plan.fleet.seconds:.1f}s; {plan.servers_before_shard} to audit{part}"
                )
                for member in plan.fleet.members:
                    if member.map_missing:
                        console.warn(f"{member.config.name}: {member.map_note}")
            with console.progress("collecting") as progress:
                snapshot = collect_plan(
                    plan,
                    jobs=jobs,
                    server_jobs=servers_parallel,
                    progress=progress,
                    scram_key_reuse=not no_scram_key_reuse,
                    server_timeout=server_timeout,
                )
            nothing_collected(snapshot, "scanned")
            for warning in over_privileged(snapshot, config):
                console.warn(warning)
        results = evaluate(
            snapshot,
            config,
            rules,
            started_at=started,
            config_bytes=raw,
            snapshot_path=snapshot_path,
            include_passed=include_passed,
        )
        # The results carry what renderers need: free the catalog copy first (the
        # evidence bundle's copy is written out now, not held).
        kept = None
        if bundle_path is not None:
            from pgwarden.evidence.bundle import SnapshotFile

            kept = SnapshotFile.of(snapshot)
        del snapshot
        if shard is not None:
            from pgwarden.gate.merge import mark_shard

            results = mark_shard(results, shard)
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
        if bundle_path is not None:
            from pgwarden.evidence.bundle import BundleInput, build_bundle

            bundle = BundleInput(
                results=results,
                config=config,
                snapshot=kept,
                config_text=raw.decode("utf-8") if raw is not None else None,
                signing_key=signing_key,
            )
            write_output(bundle_path, build_bundle(bundle))
            wrote = True
        if results.waivers is not None:
            from pgwarden.gate.waivers import waiver_warnings

            # With report files, as many lines as a screen holds; the results name all.
            limit = MAX_WAIVER_WARNINGS if wrote else None
            for line in waiver_warnings(results.waivers, limit):
                console.warn(line)
        if not quiet and not (wrote and "-" in (*outputs.values(), bundle_path)):
            # With report files, a summary that does not grow with the findings; without
            # any, the terminal is the report and lists every finding.
            written = [(FORMAT_NAMES.get(n, n), path) for n, path in outputs.items() if path]
            if bundle_path is not None:
                written.append(("evidence bundle", bundle_path))
            print_findings(console, results, written)
            if results.compliance:
                print_compliance(console, results)
        sys.exit(outcome.exit_code)
