"""``pgwarden frameworks``: the frameworks rules map to, and each one's controls."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.terminal import Console
from pgwarden.model.errors import UsageError
from pgwarden.model.frameworks.catalogue import Framework, FrameworkControl, frameworks_for
from pgwarden.rules.registry import RegisteredRule, load_rules


@click.command("frameworks")
@click.option("--framework", "framework_id", metavar="ID", help="list one framework's controls")
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
@click.option("--rules-dir", multiple=True, type=click.Path(path_type=Path))
def frameworks_cmd(framework_id: str | None, as_json: bool, rules_dir: tuple[Path, ...]) -> None:
    """The frameworks and controls rules map to (built-in and plug-in rules)."""
    with one_line_errors():
        rules = load_rules(rules_dir)
        frameworks = _frameworks(rules)
        mapped = _mapped(rules)
        if framework_id is not None:
            chosen = [f for f in frameworks if f.id.lower() == framework_id.lower()]
            if not chosen:
                known = ", ".join(f.id for f in frameworks)
                raise UsageError(f"--framework {framework_id!r}: no such framework ({known})")
            frameworks = chosen
        if as_json:
            click.echo(json.dumps([_as_data(f, mapped) for f in frameworks], indent=2))
            return
        console = Console()
        if framework_id is None:
            console.print(_frameworks_table(frameworks, mapped), wide=True)
            console.print("one framework's controls: pgwarden frameworks --framework ID")
            return
        console.print(_controls_table(frameworks[0], mapped), wide=True)


def _frameworks(rules: list[RegisteredRule]) -> list[Framework]:
    """The shipped frameworks, then those only plug-in rules declare."""
    return frameworks_for(
        (c.framework, c.id, c.title) for entry in rules for c in entry.rule.controls
    )


def _mapped(rules: list[RegisteredRule]) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for entry in rules:
        for control in entry.rule.controls:
            found.setdefault((control.framework, control.id), []).append(entry.rule.id)
    return found


def _applies(control: FrameworkControl, rules: list[str]) -> str:
    if control.not_applicable:
        return f"not applicable: {control.not_applicable}"
    if not rules:
        return f"manual: {control.manual or 'no rule checks it'}"
    if control.manual:
        return f"partly manual: {control.manual}"
    return "automated"


def _frameworks_table(
    frameworks: list[Framework], mapped: dict[tuple[str, str], list[str]]
) -> Table:
    table = Table(title="frameworks", show_lines=False, expand=False)
    for column in ("id", "framework", "version", "controls", "checked by rules", "not applicable"):
        table.add_column(column)
    for f in frameworks:
        checked = sum(1 for c in f.controls if mapped.get((f.id, c.id)))
        excluded = sum(1 for c in f.controls if c.not_applicable)
        table.add_row(
            escape(f.id),
            escape(f.name),
            escape(f.version),
            str(len(f.controls)),
            str(checked),
            str(excluded),
        )
    return table


def _controls_table(framework: Framework, mapped: dict[tuple[str, str], list[str]]) -> Table:
    title = f"{framework.name} {framework.version}".strip()
    table = Table(title=escape(title), show_lines=False, expand=False)
    table.add_column("control", no_wrap=True)
    table.add_column("title", overflow="fold")
    table.add_column("rules", overflow="fold")
    table.add_column("how it is judged", overflow="fold")
    for control in framework.controls:
        rules = mapped.get((framework.id, control.id), [])
        table.add_row(
            escape(control.id),
            escape(control.title),
            escape(", ".join(rules)),
            escape(_applies(control, rules)),
        )
    return table


def _as_data(framework: Framework, mapped: dict[tuple[str, str], list[str]]) -> dict[str, object]:
    data = framework.model_dump(exclude_none=True)
    for control in data["controls"]:
        control["rules"] = mapped.get((framework.id, control["id"]), [])
    return data
