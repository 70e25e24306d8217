"""``pgwarden config schema`` and ``pgwarden config check``: the map for editors and for CI.

``schema`` prints the JSON Schema of pgwarden.toml that ships in the package (editors
that validate TOML against a JSON Schema take it through a ``#:schema`` directive);
``check`` validates a map without connecting anywhere and lists every problem, each
with its key path.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import resources
from pathlib import Path

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.model.config import RULE_ID, ConfigProblems, parse_config
from pgwarden.model.config_schema import CONFIG_SCHEMA_RESOURCE
from pgwarden.model.errors import EXIT_USAGE, TOML_LIMIT_BYTES, read_input
from pgwarden.rules.registry import load_rules

# The first line of a map that editors read as "validate me against this schema"
# (Taplo and Even Better TOML): a file next to the map, written by `config schema`.
SCHEMA_FILE = "pgwarden.schema.json"
SCHEMA_DIRECTIVE = f"#:schema ./{SCHEMA_FILE}"


def shipped_config_schema() -> str:
    """The JSON Schema file of pgwarden.toml as the package ships it."""
    return resources.files("pgwarden").joinpath(CONFIG_SCHEMA_RESOURCE).read_text("utf-8")


@click.group("config")
def config_group() -> None:
    """The tenancy map's JSON Schema, and checking a map without connecting."""


@config_group.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of pgwarden.toml (save it as pgwarden.schema.json)."""
    click.echo(shipped_config_schema(), nl=False)


@config_group.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--rules-dir", multiple=True, type=click.Path(path_type=Path))
def check_cmd(file: Path, rules_dir: tuple[Path, ...]) -> None:
    """Validate a map without connecting: every problem, each with its key path.

    Exit 0 when the map is valid, 2 when it has problems.
    """
    with one_line_errors():
        text = read_input(file, TOML_LIMIT_BYTES)
        try:
            config = parse_config(text, str(file))
        except ConfigProblems as invalid:
            problems = list(invalid.problems)
        else:
            problems = []
        known = {entry.rule.id for entry in load_rules(rules_dir)}
        problems += [
            f"{file}: policy.severity.{rule_id}: no such rule (pgwarden rules lists them)"
            for rule_id in _severity_overrides(text)
            if rule_id not in known
        ]
    if problems:
        for problem in problems:
            click.echo(problem)
        click.echo(f"pgwarden: {len(problems)} problem(s) in {file}", err=True)
        sys.exit(EXIT_USAGE)
    apps = sum(len(server.app) for server in config.server)
    click.echo(f"{file}: valid ({len(config.server)} server(s), {apps} app(s))")


def _severity_overrides(text: str) -> list[str]:
    """The rule ids ``[policy.severity]`` names, however the rest of the file fares."""
    try:
        policy = tomllib.loads(text).get("policy")
    except (tomllib.TOMLDecodeError, RecursionError):
        return []
    severity = policy.get("severity") if isinstance(policy, dict) else None
    return [key for key in severity if RULE_ID.match(key)] if isinstance(severity, dict) else []
