"""The engine on snapshot fixtures: no server needed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pytest

from pgwarden.engine import evaluate
from pgwarden.gate.chain import exit_code
from pgwarden.model.config import parse_config
from pgwarden.model.evidence import MAX_LISTED, MAX_MESSAGE_CHARS
from pgwarden.model.results import fingerprint
from pgwarden.model.snapshot import ServerSnapshot, Snapshot
from pgwarden.reports.registry import RENDERERS
from pgwarden.rules.base import Rule, ServerContext, Verdict
from pgwarden.rules.registry import RegisteredRule, load_rules, select_rules

FIXTURE = Path(__file__).parent.parent / "fixtures" / "small_server.json"
CONFIG = """
[policy]
fail_on = "critical"
admin_application_names = ["psql", "pgAdmin*"]

[policy.severity]
PGW-ISO-001 = "medium"

[[server]]
name = "ctxeco-db"
admin_role = "ctxecoadmin"
platform_roles = ["pgwarden_auditor"]

[[server.app]]
name = "ctxeco"
databases = ["ctxEco"]
roles = ["ctxeco_app"]

[[server.app]]
name = "zep"
databases = ["zep", "Zep_history"]
roles = ["zep_app"]
"""


def _snapshot(**changes: object) -> Snapshot:
    snapshot = Snapshot.model_validate_json(FIXTURE.read_text())
    if not changes:
        return snapshot
    server = snapshot.servers[0]
    assert server.postgres is not None
    pg = server.postgres.model_copy(update=changes)
    return snapshot.model_copy(update={"servers": (server.model_copy(update={"postgres": pg}),)})


def _run(
    snapshot: Snapshot, rules: list[str], config: str = CONFIG
) -> list[tuple[str, str, str | None, str]]:
    results = evaluate(
        snapshot, parse_config(config, "pgwarden.toml"), select_rules(load_rules(), rules)
    )
    return sorted((f.rule_id, f.resource, f.principal, f.status) for f in results.findings)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (["PGW-ISO-001"], [("PGW-ISO-001", "database/zep", "PUBLIC", "fail")]),
        (["PGW-MAP-001"], [("PGW-MAP-001", "database/scratch", None, "fail")]),
        (
            ["PGW-MAP-002"],
            [
                ("PGW-MAP-002", "database/Zep_history", None, "fail"),
                ("PGW-MAP-002", "role/zep_app", "role/zep_app", "fail"),
            ],
        ),
        (
            ["PGW-ADM-001"],
            [
                ("PGW-ADM-001", "session/101", "role/ctxecoadmin", "fail"),
                ("PGW-ADM-001", "session/104", "role/ctxecoadmin", "fail"),
            ],
        ),
    ],
)
def test_rules_on_snapshot_fixture(
    rules: list[str], expected: list[tuple[str, str, str | None, str]]
) -> None:
    assert _run(_snapshot(), rules) == expected


def test_admin_sessions_with_unknown_admin_role_are_an_error() -> None:
    config = CONFIG.replace('admin_role = "ctxecoadmin"\n', "")
    findings = _run(_snapshot(), ["PGW-ADM-001"], config)
    assert findings == [("PGW-ADM-001", "server/ctxeco-db", None, "error")]


def test_missing_sessions_make_an_error_not_a_pass() -> None:
    snapshot = _snapshot(sessions=None)
    results = evaluate(
        snapshot, parse_config(CONFIG, "c.toml"), select_rules(load_rules(), ["PGW-ADM-001"])
    )
    assert [(f.status, f.resource) for f in results.findings] == [("error", "server/ctxeco-db")]
    assert "sessions" in results.findings[0].message
    assert not results.scan.complete
    assert results.coverage[0].outcome == "error"
    assert exit_code(results, "critical") == 3


def test_unreachable_server_errors_every_rule() -> None:
    snapshot = Snapshot.model_validate(
        {
            "tool_version": "t",
            "collected_at": "2026-11-01T10:00:00Z",
            "servers": [
                {
                    "name": "ctxeco-db",
                    "errors": [{"section": "postgres", "reason": "cannot connect"}],
                }
            ],
        }
    )
    results = evaluate(snapshot, parse_config(CONFIG, "c.toml"), load_rules())
    assert results.findings and all(f.status == "error" for f in results.findings)
    assert all("cannot connect" in f.message for f in results.findings)


def test_severity_override_fingerprint_and_gate() -> None:
    config = parse_config(CONFIG, "c.toml")
    results = evaluate(_snapshot(), config, select_rules(load_rules(), ["PGW-ISO-001"]))
    (finding,) = results.findings
    assert finding.severity == "medium"
    assert finding.fingerprint == fingerprint("PGW-ISO-001", "ctxeco-db", "database/zep", "PUBLIC")
    assert results.summary.fail == 1 and results.summary.by_severity == {"medium": 1}
    assert exit_code(results, "critical") == 0
    assert exit_code(results, "medium") == 1
    assert exit_code(results, "none") == 0


class _Crashes(Rule):
    """Always crashes.

    Fix: nothing.
    """

    id = "TEST-CRASH-001"
    severity = "low"

    def check(self, snapshot: ServerSnapshot, config: ServerContext) -> Iterable[Verdict]:
        raise KeyError("boom")


def test_a_crashing_rule_is_an_error_finding() -> None:
    results = evaluate(
        _snapshot(), parse_config(CONFIG, "c.toml"), [RegisteredRule(_Crashes, "test")]
    )
    (finding,) = results.findings
    assert finding.status == "error" and "KeyError" in finding.message
    assert exit_code(results, "critical") == 3


def test_access_matrix_in_server_summary() -> None:
    results = evaluate(
        _snapshot(), parse_config(CONFIG, "c.toml"), select_rules(load_rules(), ["PGW-ISO-001"])
    )
    cells = {(c.database, c.principal, c.via, c.violation) for c in results.servers[0].access}
    assert ("zep", "PUBLIC", "public", True) in cells
    assert ("ctxEco", "ctxeco", "own", False) in cells


class _Documented(_Crashes):
    """A plug-in rule with its own documentation page.

    Fix: nothing.
    """

    id = "TEST-DOCS-001"
    help_uri = "https://plugins.example.com/TEST-DOCS-001"


def test_rule_docs_links_come_from_the_config_or_the_rule() -> None:
    rules = [*select_rules(load_rules(), ["PGW-ISO-001"]), RegisteredRule(_Documented, "test")]
    unset = evaluate(_snapshot(), parse_config(CONFIG, "c.toml"), rules)
    # No place configured: built-in rules carry no link; a plug-in keeps its own.
    assert {r.id: r.help_uri for r in unset.rules} == {
        "PGW-ISO-001": None,
        "TEST-DOCS-001": "https://plugins.example.com/TEST-DOCS-001",
    }
    docs = "https://git.example.com/pgwarden/blob/v0.1.0/docs/rules/{rule_id}.md"
    config = parse_config(f'{CONFIG}\n[report]\nrule_docs_url = "{docs}"\n', "c.toml")
    configured = evaluate(_snapshot(), config, rules)
    assert {r.id: r.help_uri for r in configured.rules} == {
        "PGW-ISO-001": docs.replace("{rule_id}", "PGW-ISO-001"),
        "TEST-DOCS-001": "https://plugins.example.com/TEST-DOCS-001",
    }


class _Sprawls(Rule):
    """A plug-in that lists everything it saw.

    Violation: always.

    Fix: nothing.
    """

    id = "TEST-SPRAWL-001"
    severity = "low"

    def check(self, snapshot: ServerSnapshot, config: ServerContext) -> Iterable[Verdict]:
        yield Verdict(
            resource="server/ctxeco-db",
            message="found " + ", ".join(f"role_{n:05d}" for n in range(1_000)),
            evidence={
                "names": [f"role_{n:05d}" for n in range(1_000)],
                "limits": {f"app{n:04d}": n for n in range(100)},
                "few": ["a", "b"],
                "count": 3,
            },
        )


def test_a_plug_ins_long_lists_are_capped_with_their_totals() -> None:
    results = evaluate(
        _snapshot(), parse_config(CONFIG, "c.toml"), [RegisteredRule(_Sprawls, "test")]
    )
    (finding,) = results.findings
    evidence = finding.evidence
    assert evidence["names"] == [f"role_{n:05d}" for n in range(MAX_LISTED)]
    assert evidence["names_total"] == 1_000
    assert list(evidence["limits"]) == [f"app{n:04d}" for n in range(MAX_LISTED)]
    assert evidence["limits_total"] == 100
    assert evidence["few"] == ["a", "b"] and "few_total" not in evidence
    assert evidence["count"] == 3
    # Its message too: cut to a bounded line that says it was cut.
    assert len(finding.message) == MAX_MESSAGE_CHARS and finding.message.endswith("…")
    assert finding.message.startswith("found role_00000, role_00001")


class _RawNames(Rule):
    """Writes a name raw into its message and script.

    Rationale: a test of the engine's guard.

    Violation: always.

    Fix: nothing.
    """

    id = "TEST-RAW-001"
    severity = "low"

    def check(self, snapshot: ServerSnapshot, config: ServerContext) -> Iterable[Verdict]:
        name = "evil\x1b]0;owned\x07\u202egnp.exe\nDROP TABLE x;"
        yield Verdict(
            resource="server/ctxeco-db",
            message=f"role {name} is odd",
            remediation=f'-- about {name}\nALTER ROLE "{name}" NOLOGIN;',
        )


def test_a_plug_ins_raw_names_reach_no_output_raw() -> None:
    # A name with an escape sequence, a right-to-left override and a line break, left
    # raw by a rule: the finding's message and each line of its script are escaped.
    results = evaluate(
        _snapshot(), parse_config(CONFIG, "c.toml"), [RegisteredRule(_RawNames, "test")]
    )
    (finding,) = results.findings
    assert finding.message == "role evil\\x1b]0;owned\\x07\\u202egnp.exe\\nDROP TABLE x; is odd"
    script = (finding.remediation or "").split("\n")
    assert script[0] == "-- about evil\\x1b]0;owned\\x07\\u202egnp.exe"
    assert all(line.isprintable() for line in script)


class _Malformed(Rule):
    """Yields one good verdict among verdicts the engine cannot record.

    Rationale: a test of the engine's guard.

    Violation: always.

    Fix: nothing.
    """

    id = "TEST-BAD-001"
    severity = "low"
    bad: tuple[object, ...] = ()

    def check(self, snapshot: ServerSnapshot, config: ServerContext) -> Iterable[Verdict]:
        yield Verdict(resource="server/ctxeco-db", message="a good one")
        yield from self.bad  # type: ignore[misc]


class _Dated(Rule):
    """Puts values JSON has no type for into its evidence.

    Rationale: a test of the engine's guard.

    Violation: always.

    Fix: nothing.
    """

    id = "TEST-DATED-001"
    severity = "low"

    def check(self, snapshot: ServerSnapshot, config: ServerContext) -> Iterable[Verdict]:
        yield Verdict(
            resource="server/ctxeco-db",
            message="dated",
            evidence={
                "when": date(2026, 1, 2),
                "roles": {"b"},
                "pair": (1, 2),
                "ratio": float("nan"),
            },
        )


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"resource": "server/x", "message": "a dict"}, "it yielded a dict object, not a Verdict"),
        (Verdict(resource=None, message="m"), "its resource is None, not text"),  # type: ignore[arg-type]
        (Verdict(resource="r", message=42), "its message is of type int, not text"),  # type: ignore[arg-type]
        (Verdict(resource="r", message="m", remediation=b"x"), "its remediation is of type bytes"),  # type: ignore[arg-type]
        (Verdict(resource="r", message="m", status="failed"), "its status is not one of"),  # type: ignore[arg-type]
        (Verdict(resource="r", message="m", evidence=[1]), "its evidence is not a mapping"),  # type: ignore[arg-type]
        (Verdict(resource="r", message="m", evidence={1: "x"}), "its evidence is not a mapping"),  # type: ignore[dict-item]
        (Verdict(resource="r", message="m", app=["a"]), "its app is of type list, not text"),  # type: ignore[arg-type]
        (Verdict(resource="r", message="m", evidence={"o": object()}), "cannot be written as JSON"),
    ],
)
def test_a_plug_ins_verdict_that_cannot_be_recorded_is_an_error_of_that_rule(
    bad: object, reason: str
) -> None:
    # Before: an exception out of the engine (a traceback, exit 1 as if violations were
    # found), or, for evidence JSON cannot hold, a traceback while the reports were written.
    rule = type("_OneBad", (_Malformed,), {"bad": (bad,)})
    rules = [RegisteredRule(rule, "acme (test)"), *select_rules(load_rules(), ("PGW-ISO-001",))]
    results = evaluate(_snapshot(), parse_config(CONFIG, "c.toml"), rules)
    mine = {f.status: f for f in results.findings if f.rule_id == "TEST-BAD-001"}
    assert sorted(mine) == ["error", "fail"]
    assert mine["fail"].message == "a good one"
    error = mine["error"].message
    assert error.startswith("TEST-BAD-001 reported a verdict pgwarden cannot record: ")
    assert reason in error
    assert "object at 0x" not in error  # the reason names the field, not the value
    assert not results.scan.complete
    # The other rules' findings stand, and every report can be written.
    assert any(f.rule_id == "PGW-ISO-001" for f in results.findings)
    for render, _name in RENDERERS.values():
        assert render(results)


def test_a_plug_ins_evidence_is_made_plain_json_data() -> None:
    results = evaluate(
        _snapshot(), parse_config(CONFIG, "c.toml"), [RegisteredRule(_Dated, "acme (test)")]
    )
    (finding,) = results.findings
    assert finding.evidence == {"when": "2026-01-02", "roles": ["b"], "pair": [1, 2], "ratio": None}
    for render, _name in RENDERERS.values():
        assert render(results)


# What the two rules below made, one entry per analysis made.
_MADE: list[str] = []


def _roles_by_login(snapshot: ServerSnapshot) -> dict[bool, int]:
    _MADE.append(snapshot.name)
    assert snapshot.postgres is not None
    counts = {True: 0, False: 0}
    for role in snapshot.postgres.roles:
        counts[role.login] += 1
    return counts


class _CountsLogins(Rule):
    """Reports the logins, from an analysis it shares with the next rule.

    Fix: nothing.
    """

    id = "TEST-SHARED-001"
    severity = "low"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        counts = context.analysis(
            "test-roles-by-login", snapshot.postgres, lambda: _roles_by_login(snapshot)
        )
        yield Verdict(resource=f"server/{snapshot.name}", message=f"{counts[True]} logins")


class _CountsGroups(_CountsLogins):
    """Reports the roles without LOGIN, from the same analysis.

    Fix: nothing.
    """

    id = "TEST-SHARED-002"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        counts = context.analysis(
            "test-roles-by-login", snapshot.postgres, lambda: _roles_by_login(snapshot)
        )
        yield Verdict(resource=f"server/{snapshot.name}", message=f"{counts[False]} groups")


def test_rules_share_an_analysis_made_once_per_server() -> None:
    """``context.analysis`` makes what the rules of one server share once, for that
    server's snapshot; another server's evaluation makes its own."""
    snapshot = _snapshot()
    [server] = snapshot.servers
    assert server.postgres is not None
    other = server.model_copy(update={"name": "other-db"})
    _MADE.clear()
    results = evaluate(
        snapshot.model_copy(update={"servers": (server, other)}),
        parse_config(CONFIG, "c.toml"),
        [RegisteredRule(_CountsLogins, "test"), RegisteredRule(_CountsGroups, "test")],
    )
    assert _MADE == ["ctxeco-db", "other-db"]
    logins = sum(1 for r in server.postgres.roles if r.login)
    messages = {(f.rule_id, f.server): f.message for f in results.findings}
    assert messages[("TEST-SHARED-001", "other-db")] == f"{logins} logins"
    assert messages[("TEST-SHARED-002", "other-db")] == (
        f"{len(server.postgres.roles) - logins} groups"
    )


def test_an_analysis_is_made_again_from_another_source() -> None:
    config = parse_config(CONFIG, "c.toml")
    context = ServerContext(server=config.server[0], policy=config.policy, admin_role=None)
    first, second = object(), object()
    made: list[object] = []

    def make(source: object) -> list[object]:
        made.append(source)
        return [source]

    assert context.analysis("k", first, lambda: make(first)) == [first]
    assert context.analysis("k", first, lambda: make(first)) == [first]
    assert context.analysis("k", second, lambda: make(second)) == [second]
    assert context.analysis("other", second, lambda: make(second)) == [second]
    assert made == [first, second, second]


class _NamesItsAnalysisTenancy(Rule):
    """Keeps an analysis of its own under the text "tenancy", with the built-in
    tenancy's source, before the built-in rules run.

    Fix: nothing.
    """

    id = "TEST-SHARED-003"
    severity = "low"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        kept = context.analysis("tenancy", snapshot.postgres, lambda: "the plug-in's own")
        yield Verdict(resource=f"server/{snapshot.name}", message=kept)


def test_a_plug_ins_key_never_meets_a_built_in_analysis() -> None:
    """A plug-in's analysis under a built-in analysis's name, made from the same part of
    the snapshot, is its own: the built-in rules still make and use theirs."""
    config = parse_config(CONFIG, "c.toml")
    built_in = select_rules(load_rules(), ["PGW-ISO-*", "PGW-ROLE-*", "PGW-MAP-*"])
    alone = evaluate(_snapshot(), config, built_in)
    beside = evaluate(
        _snapshot(), config, [RegisteredRule(_NamesItsAnalysisTenancy, "test"), *built_in]
    )
    assert any(f.rule_id.startswith("PGW-ISO-") for f in alone.findings)
    plug_in = [f for f in beside.findings if f.rule_id == "TEST-SHARED-003"]
    assert [f.message for f in plug_in] == ["the plug-in's own"]
    assert [f for f in beside.findings if f not in plug_in] == list(alone.findings), (
        "the built-in rules found something else beside the plug-in"
    )
