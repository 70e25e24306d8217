"""Baselines: accept today's findings, fail the gate on new ones only."""

from __future__ import annotations

import json

import jsonschema
import pytest

from pgwarden.gate.baseline import parse_baseline
from pgwarden.model.errors import ConfigError
from pgwarden.model.results import shipped_results_schema
from tests.gate.conftest import Workspace, config_text, findings_by_resource

APPS = {"alpha": "alpha", "bravo": "bravo", "charlie": "charlie"}


def test_baseline_marks_new_unchanged_and_absent_and_gates_on_new(workspace: Workspace) -> None:
    workspace.create_database("alpha", public_connect=True)
    workspace.create_database("bravo", public_connect=False)
    workspace.create_database("charlie", public_connect=True)
    workspace.write("pgwarden.toml", config_text(APPS))
    workspace.write(
        "waivers.toml",
        """\
[[waiver]]
rule = "PGW-ISO-001"
resource = "database/charlie"
reason = "charlie is being retired"
owner = "charlie-team"
expires = 2999-12-31
""",
    )
    scan = ("scan", "--rules", "PGW-ISO-001", "--waivers", "waivers.toml", "-q")
    first = workspace.pgwarden(*scan, "--json", "before.json")
    assert first.exit_code == 1, first.output

    made = workspace.pgwarden("baseline", "create", "before.json", "-o", "baseline.json")
    assert made.exit_code == 0, made.output
    assert "baseline of 1 failing finding(s) written to baseline.json" in made.stderr
    baseline = workspace.json("baseline.json")
    # Waived findings stay out of a baseline: their waiver's expiry must still bite.
    assert [e["resource"] for e in baseline["findings"]] == ["database/alpha"]
    assert baseline["pgwarden_baseline"] == "1.0"
    assert baseline["source"] == "before.json"

    # The same server again: nothing new, the gate passes.
    again = workspace.pgwarden(*scan, "--baseline", "baseline.json", "--json", "again.json")
    assert again.exit_code == 0, again.output
    states = {f["resource"]: f["baseline_state"] for f in workspace.json("again.json")["findings"]}
    assert states == {"database/alpha": "unchanged", "database/charlie": "new"}

    # alpha fixed, bravo opened: bravo is new and fails; alpha is absent.
    workspace.sql(
        "REVOKE CONNECT, TEMPORARY ON DATABASE alpha FROM PUBLIC",
        "GRANT CONNECT ON DATABASE bravo TO PUBLIC",
    )
    after = workspace.pgwarden(*scan, "--baseline", "baseline.json", "--json", "after.json")
    assert after.exit_code == 1, after.output
    results = workspace.json("after.json")
    jsonschema.Draft202012Validator(shipped_results_schema()).validate(results)
    found = findings_by_resource(results, "PGW-ISO-001")
    assert {r: f["baseline_state"] for r, f in found.items()} == {
        "database/alpha": "absent",
        "database/bravo": "new",
        "database/charlie": "new",
    }
    assert found["database/alpha"]["status"] == "fail"  # the status it had in the baseline
    assert found["database/alpha"]["fingerprint"] == baseline["findings"][0]["fingerprint"]
    # Absent entries are not counted: one failing (bravo), one waived (charlie).
    assert results["summary"]["fail"] == 1
    assert results["summary"]["waived"] == 1
    assert results["summary"]["by_severity"] == {"high": 1}
    assert results["baseline"]["new"] == 2
    assert results["baseline"]["unchanged"] == 0
    assert results["baseline"]["absent"] == 1
    assert results["baseline"]["file"] == "baseline.json"

    # bravo accepted too (a new baseline): the gate passes.
    workspace.pgwarden("baseline", "create", "after.json", "-o", "baseline.json")
    assert [e["resource"] for e in workspace.json("baseline.json")["findings"]] == [
        "database/bravo"
    ]
    final = workspace.pgwarden(*scan, "--baseline", "baseline.json")
    assert final.exit_code == 0, final.output


def test_an_entry_is_absent_only_when_its_rule_ran(workspace: Workspace) -> None:
    workspace.create_database("alpha", public_connect=True)
    workspace.write("pgwarden.toml", config_text({"alpha": "alpha"}))
    workspace.pgwarden("scan", "--rules", "PGW-ISO-001", "--json", "r.json", "-q")
    workspace.pgwarden("baseline", "create", "r.json", "-o", "baseline.json")
    run = workspace.pgwarden(
        "scan", "--rules", "PGW-MAP-*", "--baseline", "baseline.json", "--json", "map.json", "-q"
    )
    assert run.exit_code == 0, run.output
    results = workspace.json("map.json")
    assert [f for f in results["findings"] if f["rule_id"] == "PGW-ISO-001"] == []
    assert results["baseline"]["absent"] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "b.json: not valid JSON"),
        ("[]", "b.json: not a pgwarden baseline: (top level): Input should be a valid dictionary"),
        (
            json.dumps({"pgwarden_baseline": "1.0"}),
            "b.json: not a pgwarden baseline: created_at: required key is missing",
        ),
        (
            json.dumps(
                {
                    "pgwarden_baseline": "1.0",
                    "created_at": "2026-01-01T00:00:00Z",
                    "findings": [{"fingerprint": "x"}],
                }
            ),
            "b.json: not a pgwarden baseline: findings.0.rule_id: required key is missing",
        ),
        (
            json.dumps({"schema_version": "1.0", "findings": []}),
            "b.json: this is a results document, not a baseline; make one with "
            "'pgwarden baseline create b.json -o baseline.json'",
        ),
    ],
)
def test_a_bad_baseline_is_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_baseline(text, "b.json")
    assert str(caught.value).startswith(message)


def test_a_bad_baseline_stops_the_scan_with_exit_2(workspace: Workspace) -> None:
    workspace.write("pgwarden.toml", config_text({}))
    workspace.write("baseline.json", "{}")
    run = workspace.pgwarden("scan", "--baseline", "baseline.json", "--json", "r.json")
    assert run.exit_code == 2
    assert run.stderr.strip() == (
        "pgwarden: error: baseline.json: not a pgwarden baseline: created_at: "
        "required key is missing"
    )
    made = workspace.pgwarden("baseline", "create", "nope.json", "-o", "b.json")
    assert made.exit_code == 2
    assert made.stderr.strip() == "pgwarden: error: nope.json: no such file"
