"""Compliance as the terminal shows it: one line per framework, or one framework's controls."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from pgwarden.model.results import SUMMARY_STATUSES, ComplianceFramework, Results

STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "error": "magenta",
    "manual": "yellow",
    "not_applicable": "dim",
}


def frameworks_summary_table(results: Results) -> Table:
    """How many controls of each framework pass, fail, need a person or do not apply."""
    table = Table(title="compliance by framework", show_lines=False, expand=False)
    table.add_column("framework")
    table.add_column("id")
    for status in SUMMARY_STATUSES:
        table.add_column(status, justify="right")
    for framework in results.compliance or ():
        table.add_row(
            escape(framework.short_name or framework.name),
            escape(framework.id),
            # Not applicable is counted plain; the other statuses in their colour.
            *(
                str(value) if status == "not applicable" else _count(value, status)
                for status, value in framework.summary.by_status()
            ),
        )
    return table


def controls_table(framework: ComplianceFramework, *, statuses: tuple[str, ...] = ()) -> Table:
    """One framework's controls with their status, rules, findings and reason."""
    title = f"{framework.name} {framework.version}".strip()
    table = Table(title=escape(title), show_lines=False, expand=False)
    table.add_column("control", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("title", overflow="fold")
    table.add_column("rules", overflow="fold")
    table.add_column("fail/error/waived/pass", justify="right")
    table.add_column("reason", overflow="fold")
    for control in framework.controls:
        if statuses and control.status not in statuses:
            continue
        counts = control.findings
        table.add_row(
            escape(control.id),
            f"[{STATUS_STYLE[control.status]}]{control.status.replace('_', ' ')}[/]",
            escape(control.title),
            escape(", ".join(control.rules)),
            f"{counts.fail}/{counts.error}/{counts.waived}/{counts.pass_}",
            escape(control.reason or ""),
        )
    return table


def _count(value: int, status: str) -> str:
    return f"[{STATUS_STYLE[status]}]{value}[/]" if value else "0"
