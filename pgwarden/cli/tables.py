"""What commands print on stdout as tables and listings: rules, runs, diffs (findings: listing)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from rich.markup import escape
from rich.table import Table

from pgwarden.gate.history.records import RunDiff, RunRecord, StoredFinding
from pgwarden.model.results import RuleInfo


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


# Lines of each kind (new, resolved, changed) shown per server; --json lists all.
MAX_DIFF_LINES = 20


def diff_lines(diff: RunDiff, limit: int = MAX_DIFF_LINES) -> list[str]:
    """``pgwarden diff`` as text: + new, - resolved, ~ status changed, per server (the
    first ``limit`` of each kind, then how many more)."""

    def capped(kind: str, lines: list[str], total: int) -> list[str]:
        if total <= limit:
            return lines
        more = f"  … and {total - limit:,} more {kind} (pgwarden diff --json lists every one)"
        return [*lines[:limit], more]

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
        lines += capped("new", [f"  + {describe(f)}" for f in change.new[:limit]], len(change.new))
        lines += capped(
            "resolved",
            [f"  - {describe(f)}" for f in change.resolved[:limit]],
            len(change.resolved),
        )
        lines += capped(
            "changed",
            [f"  ~ {describe(b)} ({a.status} → {b.status})" for a, b in change.changed[:limit]],
            len(change.changed),
        )
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
