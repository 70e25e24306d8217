"""The JSON Schema of pgwarden.toml: current, and it agrees with the models on real maps."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from pgwarden.cli.demo import DEMO_CONFIG
from pgwarden.model.config import Config, ConfigProblems, parse_config
from pgwarden.model.config_schema import config_json_schema
from pgwarden.model.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "pgwarden" / "schemas" / "config.json"
REGENERATE = os.environ.get("PGWARDEN_REGEN_GOLDEN") == "1"
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads(SHIPPED.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def test_the_shipped_schema_is_current() -> None:
    if REGENERATE:
        SHIPPED.write_text(_text(config_json_schema()), encoding="utf-8")
    assert SHIPPED.read_text(encoding="utf-8") == _text(config_json_schema()), (
        "pgwarden/schemas/config.json is stale; regenerate with PGWARDEN_REGEN_GOLDEN=1"
    )


def example_maps() -> list[tuple[str, str]]:
    """Every tenancy map the repository shows: files in examples/, README and docs blocks."""
    maps = [
        (str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "examples").rglob("*.toml"))
        if path.name != "waivers.toml"
    ]
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, block in enumerate(TOML_BLOCK.findall(document.read_text("utf-8")), 1):
            if "[[waiver]]" not in block:  # waiver files have their own loader
                maps.append((f"{document.relative_to(ROOT)} block {number}", block))
    maps.append(("the demo's map", DEMO_CONFIG))
    return maps


@pytest.mark.parametrize(("where", "text"), example_maps(), ids=lambda v: str(v)[:40])
def test_every_example_map_is_valid_for_the_schema_and_the_models(
    validator: Draft7Validator, where: str, text: str
) -> None:
    data = tomllib.loads(text)
    if "/maps/" in where:
        # A fleet's per-server map holds the keys of one [[server]] block.
        data = {"server": [{"name": Path(where).stem, **data}]}
        Config.model_validate(data)
    else:
        parse_config(text, where)
    errors = [error.message for error in validator.iter_errors(data)]
    assert errors == [], where


def test_the_repository_shows_maps() -> None:
    places = [where for where, _ in example_maps()]
    assert "examples/pgwarden.toml" in places
    assert sum(where.startswith("README.md") for where in places) >= 2


BROKEN = """\
[policy]
fail_on = "sometimes"
fial_on = "high"
max_firewall_prefix = 40

[[server]]
name = "ctxeco-db"
port = 5432

[[server.app]]
name = "zep"
connection_budget = "lots"
databases = "zep"

[report]
rule_docs_url = 7
"""
# Each problem as the schema's validator and the models see it: the key path.
BROKEN_KEYS = {
    ("policy", "fail_on"),
    ("policy", "fial_on"),
    ("policy", "max_firewall_prefix"),
    ("server", 0, "port"),
    ("server", 0, "app", 0, "connection_budget"),
    ("server", 0, "app", 0, "databases"),
    ("report", "rule_docs_url"),
}


def _path(error: Any) -> tuple[Any, ...]:
    path = tuple(error.absolute_path)
    # additionalProperties reports the object; the key is named in the message.
    if error.validator == "additionalProperties":
        path += tuple(re.findall(r"'([^']+)' was unexpected", error.message))
    return path


def test_a_broken_map_is_rejected_by_both_with_every_key(validator: Draft7Validator) -> None:
    data = tomllib.loads(BROKEN)
    assert {_path(error) for error in validator.iter_errors(data)} == BROKEN_KEYS
    with pytest.raises(ConfigProblems) as info:
        parse_config(BROKEN, "pgwarden.toml")
    problems = info.value.problems
    assert len(problems) == len(BROKEN_KEYS)
    assert "pgwarden.toml: server[name='ctxeco-db'].port: unknown key" in problems
    assert any(p.startswith("pgwarden.toml: policy.fial_on: unknown key") for p in problems)
    assert str(info.value).endswith(f"(and {len(BROKEN_KEYS) - 1} more problem(s))")
    assert isinstance(info.value, ConfigError)  # every caller of parse_config still sees one


def test_internal_fields_are_not_keys() -> None:
    with pytest.raises(ConfigProblems, match="locations: unknown key"):
        parse_config("locations = {}\n", "pgwarden.toml")
    assert "path" not in config_json_schema()["properties"]
