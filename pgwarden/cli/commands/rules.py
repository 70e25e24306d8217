"""``pgwarden rules`` and ``pgwarden explain``: the rule catalogue and one rule's documentation."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.cli.tables import rules_table
from pgwarden.cli.terminal import Console
from pgwarden.engine import rule_info
from pgwarden.model.frameworks.catalogue import control_title, framework_label
from pgwarden.rules.registry import find_rule, load_rules


@click.command("rules")
@click.option("--json", "as_json", is_flag=True, help="machine-readable catalogue")
@click.option("--rules-dir", multiple=True, type=click.Path(path_type=Path))
def rules_cmd(as_json: bool, rules_dir: tuple[Path, ...]) -> None:
    """List the rule catalogue, built-in and plug-in."""
    with one_line_errors():
        infos = [rule_info(entry) for entry in load_rules(rules_dir)]
        if as_json:
            click.echo(json.dumps([i.model_dump(exclude_none=True) for i in infos], indent=2))
            return
        Console().print(rules_table(infos))


@click.command()
@click.argument("rule_id")
@click.option("--rules-dir", multiple=True, type=click.Path(path_type=Path))
def explain(rule_id: str, rules_dir: tuple[Path, ...]) -> None:
    """Rationale, what is checked, and the fix for one rule."""
    with one_line_errors():
        entry = find_rule(load_rules(rules_dir), rule_id)
        rule = entry.rule
        doc = rule.doc()
        lines = [
            f"{rule.id} — {doc.title}",
            f"severity: {rule.severity}    family: {rule.family()}    source: {entry.source}",
        ]
        if rule.frameworks:
            lines.append(f"frameworks: {', '.join(rule.frameworks)}")
        if rule.controls:
            lines.append("controls:")
            lines += [
                f"  {framework_label(c.framework)} {c.id}: {control_title(c)}"
                for c in rule.controls
            ]
        lines += ["", "Why it matters", _indent(doc.rationale)]
        if doc.violation:
            lines += ["", "What is checked", _indent(doc.violation)]
        lines += ["", "How to fix it", _indent(doc.fix)]
        lines.append(f"\nneeds: {', '.join(rule.requires)}")
        click.echo("\n".join(lines))


def _indent(text: str) -> str:
    paragraphs = text.split("\n\n")
    return "\n\n".join(
        textwrap.fill(p, 88, initial_indent="  ", subsequent_indent="  ") for p in paragraphs
    )
