"""The results document itself: valid against the schema that ships, which is generated."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

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

SHIPPED = Path(__file__).parents[2] / "pgwarden" / "schemas" / "results-1.0.json"


def schema_text() -> str:
    """The shipped file's exact bytes: sorted keys, two-space indent, final newline."""
    return json.dumps(results_json_schema(), indent=2, sort_keys=True) + "\n"


def test_shipped_schema_is_the_generated_one() -> None:
    if REGENERATE:
        SHIPPED.write_text(schema_text(), encoding="utf-8", newline="\n")
    assert SHIPPED.read_text("utf-8") == schema_text(), (
        "pgwarden/schemas/results-1.0.json is stale; regenerate with PGWARDEN_REGEN_GOLDEN=1"
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
