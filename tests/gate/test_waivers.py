"""Waivers: the file format, matching, expiry and staleness, and the gate they feed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgwarden.gate.chain import exit_code
from pgwarden.gate.waivers import (
    WaiverEntry,
    _Index,
    _Ran,
    apply_waivers,
    parse_waivers,
    waiver_warnings,
)
from pgwarden.model.errors import ConfigError
from pgwarden.model.results import (
    Coverage,
    Finding,
    Results,
    ScanInfo,
    Tool,
    fingerprint,
    shipped_results_schema,
)
from tests.calls import counted_calls
from tests.gate.conftest import SERVER, Workspace, config_text, findings_by_resource

TODAY = date(2026, 5, 10)
GOOD = """\
[[waiver]]
rule = "PGW-ISO-001"
resource = "database/zep"
reason = "zep moves to its own server in Q1"
owner = "platform-team@example.com"
expires = 2026-06-30
"""


def _results(*resources: str, rule: str = "PGW-ISO-001") -> Results:
    findings = tuple(
        Finding(
            rule_id=rule,
            severity="high",
            status="fail",
            server=SERVER,
            app=resource.split("/")[1],
            resource=resource,
            principal="PUBLIC",
            message=f"PUBLIC can connect to {resource}",
            fingerprint=fingerprint(rule, SERVER, resource, "PUBLIC"),
        )
        for resource in resources
    )
    now = datetime(2026, 5, 10, 12, tzinfo=UTC)
    return Results(
        tool=Tool(version="test"),
        scan=ScanInfo(started_at=now, finished_at=now, complete=True),
        findings=findings,
        coverage=(
            Coverage(rule_id=rule, server=SERVER, outcome="failed" if resources else "passed"),
        ),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace('reason = "zep moves to its own server in Q1"\n', ""),
            "waivers.toml: waiver #1 (line 1): reason: required key is missing",
        ),
        (
            GOOD.replace('reason = "zep moves to its own server in Q1"', 'reason = "  "'),
            "waivers.toml: waiver #1 (line 1): reason: must not be empty",
        ),
        (
            GOOD.replace("expires = 2026-06-30", 'expires = "2026-06-30"'),
            "waivers.toml: waiver #1 (line 1): expires: must be a TOML date like 2027-03-31 "
            "(unquoted, no time)",
        ),
        (
            GOOD.replace("expires = 2026-06-30", "expires = 2026-06-30T00:00:00"),
            "waivers.toml: waiver #1 (line 1): expires: must be a TOML date like 2027-03-31 "
            "(unquoted, no time)",
        ),
        (
            GOOD.replace('owner = "platform-team@example.com"\n', ""),
            "waivers.toml: waiver #1 (line 1): owner: required key is missing",
        ),
        (
            GOOD.replace("expires = 2026-06-30\n", ""),
            "waivers.toml: waiver #1 (line 1): expires: required key is missing",
        ),
        (
            GOOD + "created = 2026-07-01\n",
            "waivers.toml: waiver #1 (line 1): expires 2026-06-30 is not after created "
            "2026-07-01: the waiver was expired when it was written",
        ),
        (
            GOOD + "created = 2026-06-30\n",
            "waivers.toml: waiver #1 (line 1): expires 2026-06-30 is not after created "
            "2026-06-30: the waiver was expired when it was written",
        ),
        (
            GOOD + "\n" + GOOD.replace("database/zep", "zep"),
            "waivers.toml: waiver #2 (line 8): resource: 'zep' is not TYPE/NAME "
            "(like database/zep; globs allowed)",
        ),
        (
            GOOD.replace('rule = "PGW-ISO-001"', 'rule = "PGW ISO"'),
            "waivers.toml: waiver #1 (line 1): rule: 'PGW ISO' is not a rule id or glob "
            "(like PGW-ISO-001 or PGW-ISO-*)",
        ),
        (GOOD + 'ticket = "SEC-1"\n', "waivers.toml: waiver #1 (line 1): ticket: unknown key"),
        ('[waiver]\nrule = "x"\n', "waivers.toml: waiver: must be an array of tables"),
        ("[[waiver]\n", "waivers.toml: not valid TOML"),
        ('[[waivers]]\nrule = "x"\n', "waivers.toml: waivers: unknown key"),
    ],
)
def test_a_malformed_waiver_is_one_line_naming_file_waiver_and_problem(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_waivers(text, "waivers.toml")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_waiver_applies_through_its_expiry_day_and_not_after() -> None:
    waivers = parse_waivers(GOOD, "waivers.toml")
    results = _results("database/zep")
    on_the_day = apply_waivers(results, waivers, today=date(2026, 6, 30))
    assert on_the_day.findings[0].status == "waived"
    assert on_the_day.findings[0].waiver is not None
    assert on_the_day.findings[0].waiver.source == "waivers.toml:1"
    assert on_the_day.summary.waived == 1 and on_the_day.summary.fail == 0
    assert exit_code(on_the_day, "high") == 0

    day_after = apply_waivers(results, waivers, today=date(2026, 7, 1))
    assert day_after.findings[0].status == "fail"
    assert day_after.findings[0].waiver is None
    assert day_after.waivers is not None
    assert [n.findings for n in day_after.waivers.expired] == [(results.findings[0].fingerprint,)]
    assert exit_code(day_after, "high") == 1


def test_globs_server_app_and_principal_narrow_a_waiver() -> None:
    text = """\
[[waiver]]
rule = "pgw-iso-*"
resource = "database/temporal*"
server = "shared-*"
app = "temporal*"
principal = "PUBLIC"
reason = "temporal is being split out"
owner = "temporal-team"
expires = 2026-12-31

[[waiver]]
rule = "PGW-ISO-001"
resource = "database/zep"
server = "another-server"
reason = "only on the other server"
owner = "zep-team"
expires = 2026-12-31
"""
    results = apply_waivers(
        _results("database/temporal", "database/temporal_visibility", "database/zep"),
        parse_waivers(text, "waivers.toml"),
        today=TODAY,
    )
    status = {f.resource: f.status for f in results.findings}
    assert status == {
        "database/temporal": "waived",
        "database/temporal_visibility": "waived",
        "database/zep": "fail",
    }
    assert results.waivers is not None
    # The second waiver names a server this run did not scan: not stale, just not evaluated.
    assert results.waivers.stale == ()
    assert results.waivers.applied == 2


def test_error_findings_are_never_waived() -> None:
    results = _results()
    error = Finding(
        rule_id="PGW-ISO-001",
        severity="high",
        status="error",
        server=SERVER,
        resource=f"server/{SERVER}",
        message="could not be evaluated",
        fingerprint="e" * 32,
    )
    results = results.model_copy(update={"findings": (error,)})
    text = GOOD.replace("database/zep", "*")
    waived = apply_waivers(results, parse_waivers(text, "waivers.toml"), today=TODAY)
    assert waived.findings[0].status == "error"


def test_scan_with_waivers_against_a_live_server(workspace: Workspace) -> None:
    for name, public in (("zep", True), ("temporal", True), ("radar", False)):
        workspace.create_database(name, public_connect=public)
    workspace.write(
        "pgwarden.toml", config_text({"zep": "zep", "temporal": "temporal", "radar": "radar"})
    )
    today = datetime.now(UTC).date()
    future, past = today + timedelta(days=60), today - timedelta(days=1)
    workspace.write(
        "waivers.toml",
        f"""\
# zep has a plan and an owner.
[[waiver]]
rule = "PGW-ISO-001"
resource = "database/zep"
app = "zep"
reason = "zep moves to its own server"
owner = "platform-team@example.com"
created = {today - timedelta(days=30)}
expires = {future}

[[waiver]]
rule = "PGW-ISO-001"
resource = "database/temporal"
reason = "was meant to be fixed by now"
owner = "temporal-team@example.com"
expires = {past}

[[waiver]]
rule = "PGW-ISO-*"
resource = "database/radar"
reason = "radar was locked down since"
owner = "radar-team@example.com"
expires = {future}
""",
    )
    run = workspace.pgwarden(
        "scan", "--rules", "PGW-ISO-001", "--waivers", "waivers.toml", "--json", "r.json", "-q"
    )
    assert run.exit_code == 1, run.output
    results = workspace.json("r.json")
    jsonschema.Draft202012Validator(shipped_results_schema()).validate(results)
    found = findings_by_resource(results, "PGW-ISO-001")
    assert found["database/zep"]["status"] == "waived"
    assert found["database/zep"]["waiver"] == {
        "reason": "zep moves to its own server",
        "owner": "platform-team@example.com",
        "expires": future.isoformat(),
        "created": (today - timedelta(days=30)).isoformat(),
        "rule": "PGW-ISO-001",
        "resource": "database/zep",
        "app": "zep",
        "source": "waivers.toml:2",
    }
    assert found["database/temporal"]["status"] == "fail"
    assert "waiver" not in found["database/temporal"]
    report = results["waivers"]
    assert report["applied"] == 1
    assert [n["waiver"]["resource"] for n in report["expired"]] == ["database/temporal"]
    assert report["expired"][0]["findings"] == [found["database/temporal"]["fingerprint"]]
    assert [n["waiver"]["resource"] for n in report["stale"]] == ["database/radar"]
    assert results["summary"]["waived"] == 1 and results["summary"]["fail"] == 1
    # Expired and stale waivers are warnings even with --quiet: CI logs must show them.
    assert f"waivers.toml:11: waiver for PGW-ISO-001 database/temporal expired on {past}" in (
        run.stderr
    )
    assert "waivers.toml:18: waiver for PGW-ISO-* database/radar matches no finding" in run.stderr

    # Fix temporal: the expired waiver is left, the gate passes.
    workspace.sql('REVOKE CONNECT, TEMPORARY ON DATABASE "temporal" FROM PUBLIC')
    run = workspace.pgwarden("scan", "--rules", "PGW-ISO-001", "--waivers", "waivers.toml", "-q")
    assert run.exit_code == 0, run.output


def test_a_malformed_waivers_file_stops_the_scan_with_exit_2(workspace: Workspace) -> None:
    workspace.create_database("zep", public_connect=True)
    workspace.write("pgwarden.toml", config_text({"zep": "zep"}))
    workspace.write("waivers.toml", GOOD + "created = 2026-07-01\n")
    run = workspace.pgwarden("scan", "--waivers", "waivers.toml", "--json", "r.json")
    assert run.exit_code == 2
    assert run.stderr.strip().splitlines() == [
        "pgwarden: error: waivers.toml: waiver #1 (line 1): expires 2026-06-30 is not after "
        "created 2026-07-01: the waiver was expired when it was written"
    ]
    assert not (workspace.path / "r.json").exists()
    run = workspace.pgwarden("scan", "--waivers", "missing.toml")
    assert run.exit_code == 2
    assert run.stderr.strip() == "pgwarden: error: missing.toml: no such file"


# -- Matching at scale: every finding meets only the waivers that could cover it ---------

_NAMES = st.sampled_from(["zep", "temporal", "temporal_visibility", "radar", "a*", "[tz]*"])
_RESOURCES = st.builds(
    lambda kind, name: f"{kind}/{name}",
    st.sampled_from(["database", "schema", "table"]),
    _NAMES,
)


@st.composite
def _waiver_entries(draw: st.DrawFn) -> WaiverEntry:
    optional = st.none() | st.sampled_from(["srv-*", "srv-1", "zep", "t*", "PUBLIC", "role/*"])
    return WaiverEntry(
        rule=draw(st.sampled_from(["PGW-ISO-001", "PGW-ISO-*", "PGW-*", "PGW-ROLE-00[12]"])),
        resource=draw(_RESOURCES | st.just("*")),
        server=draw(optional),
        app=draw(optional),
        principal=draw(optional),
        reason="r",
        owner="o",
        expires=date(2027, 1, 1),
    )


@st.composite
def _findings(draw: st.DrawFn) -> Finding:
    resource = draw(_RESOURCES)
    return Finding(
        rule_id=draw(st.sampled_from(["PGW-ISO-001", "PGW-ISO-004", "PGW-ROLE-002"])),
        severity="high",
        status=draw(st.sampled_from(["fail", "fail", "error"])),
        server=draw(st.sampled_from(["srv-1", "srv-2", "other"])),
        app=draw(st.none() | st.sampled_from(["zep", "temporal"])),
        resource=resource,
        principal=draw(st.none() | st.sampled_from(["PUBLIC", "role/zep_app"])),
        message="m",
        fingerprint=fingerprint("r", "s", resource, None),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_waiver_entries(), max_size=8), st.lists(_findings(), max_size=8))
def test_the_index_finds_exactly_the_waivers_that_match(
    entries: list[WaiverEntry], findings: list[Finding]
) -> None:
    index = _Index(entries)
    for finding in findings:
        expected = [i for i, entry in enumerate(entries) if entry.matches(finding)]
        assert index.matching(finding) == expected


def test_waivers_cost_findings_plus_waivers_not_their_product() -> None:
    # Waivers naming their resource, as most do: doubling both the findings and the
    # waivers doubles the work (Python calls counted, not timed); trying every waiver on
    # every finding quadrupled it (1,000 waivers on 51,000 findings: 84 s).
    def calls(n: int) -> int:
        resources = [f"database/db{i:05d}" for i in range(n)]
        text = "".join(
            f'[[waiver]]\nrule = "PGW-ISO-001"\nresource = "database/db{i:05d}"\n'
            f'reason = "r"\nowner = "o"\nexpires = 2026-06-30\n\n'
            for i in range(0, n, 4)
        )
        waivers = parse_waivers(text, "waivers.toml")
        results = _results(*resources)
        counted, waived = counted_calls(lambda: apply_waivers(results, waivers, today=TODAY))
        assert waived.waivers is not None and waived.waivers.applied == len(waivers.entries)
        return counted

    small, large = calls(400), calls(800)
    assert large / small < 2.6, (small, large)


_PAIRS = st.tuples(
    st.sampled_from(["PGW-ISO-001", "PGW-ISO-004", "PGW-ROLE-002"]),
    st.sampled_from(["srv-1", "srv-2", "other", "zep", "t1"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_waiver_entries(), max_size=8), st.frozensets(_PAIRS, max_size=8))
def test_a_waiver_is_stale_only_where_a_rule_it_names_ran_on_a_server_it_names(
    entries: list[WaiverEntry], pairs: frozenset[tuple[str, str]]
) -> None:
    ran = _Ran(pairs)
    for entry in entries:
        expected = any(
            fnmatchcase(rule, entry.rule)
            and (entry.server is None or fnmatchcase(server, entry.server))
            for rule, server in pairs
        )
        assert ran.evaluated_by(entry) == expected


def test_stale_waivers_on_a_fleet_cost_waivers_plus_servers_not_their_product() -> None:
    # Waivers that match nothing are each asked whether their rule ran on their server.
    # Doubling the servers and the stale waivers doubles the work; trying each waiver
    # on each (rule, server) pair of the coverage quadrupled it. Waivers name their
    # server, or share a few globs.
    def calls(n: int) -> int:
        text = "".join(
            f'[[waiver]]\nrule = "PGW-ROLE-*"\nresource = "database/gone{i:05d}"\n'
            f'server = "{server}"\nreason = "r"\nowner = "o"\nexpires = 2026-06-30\n\n'
            for i in range(n)
            for server in (f"srv-{i:05d}", f"srv-*{i % 4}")
        )
        waivers = parse_waivers(text, "waivers.toml")
        rules = [f"PGW-ISO-{r:03d}" for r in range(20)] + ["PGW-ROLE-001"]
        results = _results("database/zep").model_copy(
            update={
                "coverage": tuple(
                    Coverage(rule_id=rule, server=f"srv-{s:05d}", outcome="passed")
                    for s in range(n)
                    for rule in rules
                )
            }
        )
        counted, checked = counted_calls(lambda: apply_waivers(results, waivers, today=TODAY))
        assert checked.waivers is not None and len(checked.waivers.stale) == 2 * n
        return counted

    small, large = calls(100), calls(200)
    assert large / small < 2.6, (small, large)


def test_hundreds_of_stale_waivers_warn_in_a_screenful_when_reports_are_written() -> None:
    text = "".join(
        f'[[waiver]]\nrule = "PGW-ISO-001"\nresource = "database/gone{i:03d}"\n'
        f'reason = "r"\nowner = "o"\nexpires = 2026-06-30\n\n'
        for i in range(300)
    )
    results = apply_waivers(_results("database/zep"), parse_waivers(text, "w.toml"), today=TODAY)
    assert results.waivers is not None and len(results.waivers.stale) == 300
    assert len(waiver_warnings(results.waivers)) == 300
    capped = waiver_warnings(results.waivers, 20)
    assert capped[:20] == waiver_warnings(results.waivers)[:20]
    assert capped[20:] == [
        "w.toml: 280 more expired or stale waiver(s); the results' 'waivers' section names "
        "every one"
    ]
