"""The results document itself: valid against the schema that ships, which is generated."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from pgwarden.model.results import (
    Finding,
    Results,
    load_results,
    results_json_schema,
    shipped_results_schema,
)
from pgwarden.reports.json import render_json
from tests.reports.conftest import REGENERATE, large_results

SCHEMAS = Path(__file__).parents[2] / "pgwarden" / "schemas"
SHIPPED = SCHEMAS / "results-1.1.json"


def schema_text() -> str:
    """The shipped file's exact bytes: sorted keys, two-space indent, final newline."""
    return json.dumps(results_json_schema(), indent=2, sort_keys=True) + "\n"


def test_shipped_schema_is_the_generated_one() -> None:
    if REGENERATE:
        SHIPPED.write_text(schema_text(), encoding="utf-8", newline="\n")
    assert SHIPPED.read_text("utf-8") == schema_text(), (
        "pgwarden/schemas/results-1.1.json is stale; regenerate with PGWARDEN_REGEN_GOLDEN=1"
    )
    assert shipped_results_schema() == results_json_schema()


def test_json_validates_against_the_shipped_schema(
    results: Results, hostile_results: Results
) -> None:
    validator = jsonschema.Draft202012Validator(shipped_results_schema())
    for document in (results, hostile_results):
        errors = sorted(validator.iter_errors(json.loads(render_json(document))), key=str)
        assert not errors, errors[0].message


def test_json_golden(results: Results, golden: Callable[[str, str | bytes], None]) -> None:
    golden("results.json", render_json(results))


def test_json_round_trips(results: Results, hostile_results: Results) -> None:
    for document in (results, hostile_results):
        assert load_results(render_json(document).decode("utf-8"), "rendered") == document


def test_json_is_what_the_results_model_writes(results: Results, hostile_results: Results) -> None:
    # Rendered a finding at a time, each evidence on one line, it must still hold exactly
    # what the model's own serialisation holds, and be what Results.to_json writes.
    documents = [
        results,
        hostile_results,
        large_results(500),
        results.model_copy(update={"findings": ()}),
    ]
    for document in documents:
        rendered = render_json(document)
        assert rendered == document.to_json().encode("utf-8")
        whole = document.model_dump_json(by_alias=True, exclude_none=True)
        assert json.loads(rendered) == json.loads(whole)


def test_each_finding_is_one_line(results: Results) -> None:
    lines = render_json(results).decode("utf-8").splitlines()
    start = lines.index('  "findings": [') + 1
    rows = lines[start : start + len(results.findings)]
    for row, finding in zip(rows, results.findings, strict=True):
        assert Finding.model_validate_json(row.strip().rstrip(",")) == finding
    assert lines[start + len(results.findings)] == "  ],"


def _as_written_by_1_0(results: Results) -> dict[str, object]:
    """The fixture as a pgwarden writing schema 1.0 wrote it: none of 1.1's additions."""
    data: dict[str, Any] = json.loads(render_json(results))
    data["schema_version"] = "1.0"
    del data["compliance"]
    for rule in data["rules"]:
        rule.pop("controls", None)
    for server in data["servers"]:
        server.pop("entra_roles", None)
        server.pop("sections", None)
    return data


def test_a_1_0_document_still_validates_loads_and_renders_as_1_0(results: Results) -> None:
    old = _as_written_by_1_0(results)
    jsonschema.Draft202012Validator(shipped_results_schema("1.0")).validate(old)
    jsonschema.Draft202012Validator(shipped_results_schema()).validate(old)
    loaded = load_results(json.dumps(old), "old.json")
    assert loaded.schema_version == "1.0" and loaded.compliance is None
    assert json.loads(render_json(loaded)) == old


def _shape(schema: object) -> object:
    """A JSON Schema without its descriptions: what a validator checks."""
    if isinstance(schema, dict):
        return {k: _shape(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [_shape(v) for v in schema]
    return schema


# Enums that grew a value in 1.1: a finding's status ('pass'), the schema version ('1.1').
GREW = ("status", "schema_version")


def test_1_1_only_adds_to_1_0() -> None:
    """Every property 1.0 had is there in 1.1, with the same type: old readers keep working."""
    old, new = shipped_results_schema("1.0"), shipped_results_schema()
    for name, definition in old["$defs"].items():
        for prop, schema in definition.get("properties", {}).items():
            if prop in GREW:
                continue
            assert _shape(new["$defs"][name]["properties"][prop]) == _shape(schema), (name, prop)
        for prop in GREW:
            if prop in definition.get("properties", {}):
                grown = new["$defs"][name]["properties"][prop]
                assert set(definition["properties"][prop]["enum"]) < set(grown["enum"])
    assert set(old["properties"]) <= set(new["properties"])
