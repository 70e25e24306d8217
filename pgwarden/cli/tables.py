"""What commands print on stdout as tables and listings: findings, rules, runs, diffs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from rich.markup import escape
from rich.table import Table

from pgwarden.gate.history.records import RunDiff, RunRecord, StoredFinding
from pgwarden.model.results import SEVERITY_ORDER, Results, RuleInfo

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def summary_table(results: Results) -> Table:
    """The findings as a readable table, most severe first."""
    summary = results.summary
    findings = [f for f in results.findings if f.status != "pass"]
    passes = len(results.findings) - len(findings)
    caption = (
        f"{summary.fail} failing, {summary.error} could not be evaluated, "
        f"{summary.waived} waived, {summary.pass_} rule checks passed"
        + (f", {passes} pass records (in the reports)" if passes else "")
        + ("" if results.scan.complete else " — scan INCOMPLETE")
    )
    if results.baseline is not None:
        b = results.baseline
        caption += f"\nbaseline: {b.new} new, {b.unchanged} unchanged, {b.absent} absent (fixed)"
    if results.history is not None:
        h = results.history
        caption += f"\nrun {h.run_id}: {h.new} new, {h.resolved} resolved since the previous run"
    with_age = any(f.age_days is not None for f in findings)
    table = Table(title="pgwarden findings", caption=caption, show_lines=False, expand=False)
    table.add_column("severity")
    table.add_column("status")
    table.add_column("rule")
    table.add_column("server")
    table.add_column("resource", overflow="fold")
    if with_age:
        table.add_column("age", justify="right")
    table.add_column("message", overflow="fold")
    for finding in sorted(
        findings,
        key=lambda f: (
            f.baseline_state == "absent",
            f.status != "fail",
            -SEVERITY_ORDER[f.severity],
            f.rule_id,
            f.resource,
        ),
    ):
        status: str = finding.status
        if finding.baseline_state == "absent":
            status = "fixed (absent)"
        elif finding.baseline_state is not None:
            status = f"{status} · {finding.baseline_state}"
        cells = [
            f"[{SEVERITY_STYLE[finding.severity]}]{finding.severity}[/]",
            status,
            finding.rule_id,
            finding.server,
            _plain(finding.resource),
        ]
        if with_age:
            cells.append("" if finding.age_days is None else f"{finding.age_days}d")
        table.add_row(*cells, _plain(finding.message))
    return table


def runs_table(runs: Sequence[RunRecord]) -> Table:
    """Recorded runs, newest first (``pgwarden history``)."""
    table = Table(title="pgwarden runs", show_lines=False, expand=False)
    for column in ("run", "started (UTC)", "servers", "complete", "fail", "waived", "error"):
        table.add_column(column)
    table.add_column("new", justify="right")
    table.add_column("resolved", justify="right")
    table.add_column("config", overflow="fold")
    for run in runs:
        table.add_row(
            str(run.id),
            run.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            _plain(", ".join(run.servers)),
            "yes" if run.complete else "NO",
            str(run.fail),
            str(run.waived),
            str(run.error),
            "" if run.new is None else str(run.new),
            "" if run.resolved is None else str(run.resolved),
            _plain(run.config or ""),
        )
    return table


def diff_lines(diff: RunDiff) -> list[str]:
    """``pgwarden diff`` as text: + new, - resolved, ~ status changed, per server."""

    def when(run: RunRecord) -> str:
        return run.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    def describe(f: StoredFinding) -> str:
        who = f" {f.principal}" if f.principal else ""
        return f"{f.severity} {f.rule_id} {f.resource}{who}: {f.message}"

    lines = [
        f"run {diff.before.id} ({when(diff.before)}) → run {diff.after.id} ({when(diff.after)})"
    ]
    for change in diff.servers:
        lines.append(
            f"{change.server}: {len(change.new)} new, {len(change.resolved)} resolved, "
            f"{len(change.changed)} changed status"
        )
        lines += [f"  + {describe(f)}" for f in change.new]
        lines += [f"  - {describe(f)}" for f in change.resolved]
        lines += [f"  ~ {describe(b)} ({a.status} → {b.status})" for a, b in change.changed]
    for server in diff.only_before:
        lines.append(f"{server}: only in run {diff.before.id} (not compared)")
    for server in diff.only_after:
        lines.append(f"{server}: only in run {diff.after.id} (not compared)")
    return lines


def rules_table(infos: Sequence[RuleInfo]) -> Table:
    """The rule catalogue (``pgwarden rules``)."""
    table = Table(title="pgwarden rules", show_lines=False)
    for column in ("id", "severity", "title", "source"):
        table.add_column(column)
    for info in infos:
        table.add_row(info.id, info.severity, info.title, info.source)
    return table


def _plain(text: str) -> str:
    """Names from the catalog are data, not rich markup."""
    return escape(text)
