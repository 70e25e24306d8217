"""Evaluation follows the size of the server and of the findings, whatever the shape.

On a server where most roles are logins of no app and half the databases let PUBLIC
connect, every finding stays a few kilobytes, and PGW-ROLE-004 does not ask about
every role and every database: doubling both roles and databases doubles its work
(counted as Python calls, not timed), where asking per role and database would
quadruple it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import pairwise

import pytest

from pgwarden.engine import evaluate
from pgwarden.model.evidence import MAX_LISTED, MAX_WAYS_SHOWN
from pgwarden.model.results import Finding, Results
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.base import Rule, Verdict
from pgwarden.rules.channels.user_mappings import ForeignRoleUsesChannel
from pgwarden.rules.entra_roles import EntraGroupSpansApps
from pgwarden.rules.functions.escalation import (
    ForeignDefinerEscalation,
    PrivilegedDefinerEscalation,
)
from pgwarden.rules.functions.pinned import DefinerCalledAcrossApps
from pgwarden.rules.isolation.databases import CrossAppConnect, PublicConnect, PublicTemporary
from pgwarden.rules.isolation.default_privileges import LeakyDefaultPrivileges
from pgwarden.rules.isolation.objects import ForeignObjectPrivileges
from pgwarden.rules.isolation.schemas import PublicCreateInSchema
from pgwarden.rules.registry import load_rules, select_rules
from pgwarden.rules.roles.logins import UnmappedLogin
from tests.calls import counted_calls
from tests.perf.shapes import (
    READERS_DATABASES,
    connect_granted_config,
    connect_granted_snapshot,
    entra_groups_snapshot,
    many_mappings_snapshot,
    many_ways_in_snapshot,
    only_server,
    rule_steps,
    tenant_databases_config,
    tenant_databases_snapshot,
    unmapped_logins_config,
    unmapped_logins_snapshot,
)

# "A few kilobytes": no finding's JSON may be larger, at any size of server.
MAX_FINDING_BYTES = 4_096
SMALL = (40, 200)
# Apps of the servers whose databases grant CONNECT to each login of no app.
APPS_GRANTING = 20
LARGE = (80, 400)


def _evaluate(apps: int, logins: int) -> Results:
    rules = select_rules(load_rules(), ("PGW-*",))
    return evaluate(unmapped_logins_snapshot(apps, logins), unmapped_logins_config(apps), rules)


def _largest_by_rule(results: Results) -> dict[str, int]:
    """The size of each rule's largest finding, as compact JSON."""
    largest: dict[str, int] = {}
    for finding in results.findings:
        size = len(finding.model_dump_json(exclude_none=True))
        largest[finding.rule_id] = max(largest.get(finding.rule_id, 0), size)
    return largest


def test_every_finding_stays_a_few_kilobytes_however_big_the_server() -> None:
    small, large = _evaluate(*SMALL), _evaluate(*LARGE)
    unmapped = [f for f in large.findings if f.rule_id == "PGW-ROLE-004"]
    assert len(unmapped) == LARGE[1]
    sizes_small, sizes_large = _largest_by_rule(small), _largest_by_rule(large)
    assert max(sizes_large.values()) <= MAX_FINDING_BYTES, sizes_large
    # Bounded, not merely small: on twice the server each rule's largest finding is the
    # same size (names differ in a digit at most).
    for rule_id, size in sizes_small.items():
        assert sizes_large[rule_id] <= size * 1.05, rule_id
    for finding in large.findings:
        for key, value in finding.evidence.items():
            if isinstance(value, list | dict):
                assert len(value) <= MAX_LISTED, (finding.rule_id, key)


def test_a_long_membership_chain_is_shown_by_its_ends() -> None:
    # A login reaches an app's group through 200 groups: its finding names where the
    # chain starts and the grants that end in the privilege, and counts the rest.
    apps, logins = SMALL
    results = evaluate(
        unmapped_logins_snapshot(apps, logins, chain=200),
        unmapped_logins_config(apps),
        select_rules(load_rules(), ("PGW-*",)),
    )
    found = next(
        f
        for f in results.findings
        if f.rule_id == "PGW-ISO-002" and f.principal == "role/chain0000"
    )
    assert len(found.model_dump_json(exclude_none=True)) <= MAX_FINDING_BYTES
    (access,) = found.evidence["access"]
    (path,) = access["paths"]
    # chain0000 to chain0200, then the app's group: 202 roles.
    assert path["path_total"] == 202
    half = MAX_LISTED // 2
    assert path["path"] == [
        *(f"chain{n:04d}" for n in range(half)),
        *(f"chain{n:04d}" for n in range(202 - half, 201)),
        "app0000_ro",
    ]
    middle = f"chain{half - 1:04d} → … {202 - 2 * half} more roles … → chain{202 - half:04d}"
    assert middle in access["chain"]
    for other in results.findings:
        assert len(other.model_dump_json(exclude_none=True)) <= MAX_FINDING_BYTES, other.rule_id


def test_a_login_with_hundreds_of_ways_in_has_findings_of_the_same_size() -> None:
    # One login in 50, then 500, groups that each open the same database: its
    # findings name the first few ways in, count the rest, and do not grow.
    apps, logins = SMALL
    rules = select_rules(load_rules(), ("PGW-*",))
    sizes = []
    for groups in (50, 500):
        results = evaluate(
            many_ways_in_snapshot(apps, logins, groups), unmapped_logins_config(apps), rules
        )
        mine = [f for f in results.findings if f.principal == "role/legacy_00001"]
        assert {f.rule_id for f in mine} >= {"PGW-ISO-002", "PGW-ISO-004", "PGW-ISO-006"}
        for finding in mine:
            if finding.rule_id != "PGW-ROLE-004":
                assert finding.evidence["access_total"] >= groups, finding.rule_id
            assert f"and {groups - 3} more" in finding.message or finding.rule_id in (
                "PGW-ROLE-004",
                "PGW-ISO-006",
            )
        sizes.append({f.rule_id: len(f.model_dump_json(exclude_none=True)) for f in mine})
    fifty, five_hundred = sizes
    for rule_id, size in five_hundred.items():
        assert size <= 1.05 * fifty[rule_id], rule_id
        assert size <= 1.5 * MAX_FINDING_BYTES, rule_id


def test_an_app_role_that_can_set_role_to_hundreds_names_the_first_few() -> None:
    # app0000_svc belongs to 500 groups of no app with CREATEROLE and CREATEDB: one
    # PGW-ROLE-001 finding that names five, counts the rest and stays small.
    apps, logins = SMALL
    data = unmapped_logins_snapshot(apps, logins).model_dump(mode="json")
    postgres = data["servers"][0]["postgres"]
    for n in range(500):
        group = f"pgrp{n:04d}"
        postgres["roles"].append(
            {"name": group, "login": False, "createrole": True, "createdb": True}
        )
        postgres["memberships"].append({"member": "app0000_svc", "role": group})
    results = evaluate(
        Snapshot.model_validate(data),
        unmapped_logins_config(apps),
        select_rules(load_rules(), ("PGW-ROLE-001",)),
    )
    (finding,) = [f for f in results.findings if f.resource == "role/app0000_svc"]
    assert len(finding.model_dump_json(exclude_none=True)) <= MAX_FINDING_BYTES
    assert len(finding.evidence["via_set_role"]) == 5
    assert finding.evidence["via_set_role_total"] == 500
    assert "the attributes of 495 more roles by SET ROLE" in finding.message
    remediation = finding.remediation or ""
    assert remediation.count("REVOKE") == 5
    assert "… and 495 more like these" in remediation


def test_a_login_in_many_databases_is_counted_and_listed_by_a_query() -> None:
    results = _evaluate(*LARGE)
    reader = next(f for f in results.findings if f.resource == "role/legacy_00000")
    evidence = reader.evidence
    # Its app's database and the readers' thirty, not those PUBLIC opens to everyone.
    assert evidence["can_connect_to"][:2] == ["app0000_db", "app0001_db"]
    assert len(evidence["can_connect_to"]) == MAX_LISTED
    assert evidence["can_connect_to_total"] == READERS_DATABASES
    assert "legacy_00000" in evidence["can_connect_to_more"]
    assert evidence["can_connect_through_public"] == LARGE[0] // 2
    public = next(f for f in results.findings if f.rule_id == "PGW-ISO-001")
    assert len(public.evidence["exposed_roles"]) == MAX_LISTED
    assert public.evidence["exposed_roles_total"] > LARGE[1] // 2
    assert public.evidence["exposed_roles_more"].startswith("SELECT rolname FROM pg_roles")


def _calls_while(check: Callable[[], Iterable[Verdict]]) -> tuple[int, int]:
    """Python and C function calls made while the verdicts of ``check`` are produced."""
    calls, verdicts = counted_calls(lambda: list(check()))
    return calls, len(verdicts)


def _rule_calls(
    rule: type[Rule],
    apps: int,
    logins: int,
    *,
    definers: bool = False,
    channels: bool = False,
    tables: int = 0,
    schemas: int = 0,
) -> int:
    snapshot = unmapped_logins_snapshot(
        apps, logins, definers=definers, channels=channels, tables=tables, schemas=schemas
    )
    calls, verdicts = _snapshot_calls(rule, snapshot, apps)
    assert verdicts > 0
    return calls


def _snapshot_calls(rule: type[Rule], snapshot: Snapshot, apps: int) -> tuple[int, int]:
    """Calls made by ``rule`` on ``snapshot`` (of ``apps`` apps, mapped); its verdicts."""
    server, context = only_server(snapshot, unmapped_logins_config(apps))
    return _calls_while(lambda: rule().check(server, context))


def test_unmapped_logins_work_grows_with_roles_not_roles_times_databases() -> None:
    # Twice the roles and twice the databases: twice the work when it follows the
    # roles; four times when every role is asked about every database.
    small, large = _rule_calls(UnmappedLogin, *SMALL), _rule_calls(UnmappedLogin, *LARGE)
    assert large / small < 2.6, (small, large)


def test_cross_app_connect_work_grows_with_the_grants_not_roles_times_databases() -> None:
    small, large = _rule_calls(CrossAppConnect, *SMALL), _rule_calls(CrossAppConnect, *LARGE)
    assert large / small < 2.6, (small, large)


@pytest.mark.parametrize(
    "rule",
    [
        PublicConnect,
        CrossAppConnect,
        ForeignObjectPrivileges,
        PrivilegedDefinerEscalation,
        ForeignDefinerEscalation,
        DefinerCalledAcrossApps,
        ForeignRoleUsesChannel,
    ],
)
def test_a_database_granting_connect_to_each_login_costs_the_logins_not_their_square(
    rule: type[Rule],
) -> None:
    # Whether each of thousands of logins may log in was asked by walking an ACL that
    # names each of them: the logins times the ACL (x3.7 per doubling; 3.7 s at 4,000
    # logins). Each database's holders are now gathered once, each login's groups once.
    def steps(logins: int) -> int:
        counted, verdicts = rule_steps(
            rule,
            connect_granted_snapshot(APPS_GRANTING, logins),
            connect_granted_config(APPS_GRANTING, logins),
        )
        assert verdicts
        return counted

    small, large = steps(200), steps(400)
    assert large / small < 2.6, (small, large)


def _tenant_growth(rule: type[Rule], *, per_database: bool = True, **shape: bool) -> float:
    """How much more work ``rule`` does on the tenant shape (``tenant_databases_snapshot``
    with ``shape``'s options) at twice the databases and twice the logins: about 2 when
    it follows their sum, 4 their product. ``per_database``: each run yields a verdict
    for each database at least."""
    counted: list[int] = []
    for databases, logins in ((50, 500), (100, 1000)):
        steps, verdicts = rule_steps(
            rule,
            tenant_databases_snapshot(databases, logins, **shape),
            tenant_databases_config(databases, logins),
        )
        if per_database:
            assert len(verdicts) >= databases
        counted.append(steps)
    return counted[1] / counted[0]


@pytest.mark.parametrize(
    "rule", [PublicConnect, PublicTemporary, ForeignDefinerEscalation, DefinerCalledAcrossApps]
)
def test_an_app_of_many_databases_and_many_roles_costs_their_sum(rule: type[Rule]) -> None:
    # A database per tenant, a login per tenant: each database's script and evidence
    # were made by walking every role of the app (which GRANTs keep its access, its
    # first foreign logins, which of its roles can connect and call its routines): the
    # databases times the roles (x3.5-3.9 per doubling of both).
    assert _tenant_growth(rule) < 2.6


@pytest.mark.parametrize(
    "rule", [PrivilegedDefinerEscalation, ForeignDefinerEscalation, DefinerCalledAcrossApps]
)
def test_routines_granted_to_an_app_group_in_many_databases_cost_their_sum(
    rule: type[Rule],
) -> None:
    # EXECUTE revoked from PUBLIC and granted to the app's group of every tenant login,
    # as it should be, with one login of no app in the group: who each routine's grant
    # reaches was made per database, sorted per routine, and read to its end for the
    # one stray caller and to count the callers (x3.6-4.2 per doubling of both). The
    # routines' owner is no admin: PGW-FUNC-001 has nothing to say, but asks.
    growth = _tenant_growth(
        rule, per_database=rule is not PrivilegedDefinerEscalation, group_execute=True
    )
    assert growth < 2.6


def test_an_app_of_many_databases_made_before_postgresql_15_costs_their_sum() -> None:
    # Before PostgreSQL 15 every database's public schema gives CREATE to PUBLIC (and a
    # server upgraded since keeps it). Each finding's script names the app's roles that
    # would need CREATE back, and was made by asking each role of the app about each
    # schema: the databases times the roles (x3.9 per doubling of both).
    assert _tenant_growth(PublicCreateInSchema, old_public_schema=True) < 2.6


def test_entra_groups_through_one_role_cost_groups_plus_databases() -> None:
    # Entra groups that all belong to one role granted in every database: doubling the
    # groups and the databases doubles the work; walking each group's reach database by
    # database quadrupled it (x3.9).
    def calls(apps: int, groups: int) -> int:
        snapshot = entra_groups_snapshot(apps, 100, groups)
        counted, verdicts = _snapshot_calls(EntraGroupSpansApps, snapshot, apps)
        assert verdicts == groups
        return counted

    small, large = calls(100, 50), calls(200, 100)
    assert large / small < 2.6, (small, large)


def test_an_entra_group_spanning_every_app_is_one_bounded_finding() -> None:
    apps = 3 * MAX_LISTED
    results = evaluate(
        entra_groups_snapshot(apps, 40, 2),
        unmapped_logins_config(apps),
        select_rules(load_rules(), ("PGW-ENTRA-003",)),
    )
    finding = next(f for f in results.findings if f.resource == "role/team0000")
    assert list(finding.evidence["apps"]) == [f"app{n:04d}" for n in range(MAX_LISTED)]
    assert finding.evidence["apps_total"] == apps
    assert finding.evidence["apps"]["app0000"] == ["app0000_db (through readers)"]
    assert f"databases of {apps} apps ('app0000', 'app0001', 'app0002' and " in finding.message
    assert "REVOKE readers FROM team0000" in (finding.remediation or "")
    assert len(finding.model_dump_json()) <= MAX_FINDING_BYTES


def _objects_cost(members: int, tables: int) -> int:
    return _rule_calls(ForeignObjectPrivileges, 4, members, tables=tables)


def _defaults_cost(members: int, schemas: int) -> int:
    return _rule_calls(LeakyDefaultPrivileges, 4, members, schemas=schemas)


@pytest.mark.parametrize(
    ("cost_of", "before"),
    [(_objects_cost, "17%"), (_defaults_cost, "25%")],
    ids=["objects", "defaults"],
)
def test_what_a_group_hands_over_costs_members_plus_objects_not_their_product(
    cost_of: Callable[[int, int], int], before: str
) -> None:
    # Each app's group may read every table (ISO-004), or is given every new table of
    # each of its schemas by default (ISO-006); its foreign members hold them all
    # through it. Work that is members plus objects has no part that grows with their
    # product: cost(2m, 2o) - cost(2m, o) - cost(m, 2o) + cost(m, o) is that part, and
    # nothing else (``before`` of the whole when each member was given each object; for
    # tables, 6% when each table listed each member).
    members, objects = 400, 40
    cost = {(m, o): cost_of(members * m, objects * o) for m in (1, 2) for o in (1, 2)}
    product = cost[2, 2] - cost[2, 1] - cost[1, 2] + cost[1, 1]
    assert product < 0.02 * cost[2, 2], (before, cost)


def _first_member_finding(
    rule_id: str, *, tables: int = 0, schemas: int = 0
) -> tuple[Finding, Results]:
    """``rule_id``'s finding of the first app's database and its first foreign member
    (the unmapped-logins shape at its small size), and all the rule found."""
    apps, logins = SMALL
    results = evaluate(
        unmapped_logins_snapshot(apps, logins, tables=tables, schemas=schemas),
        unmapped_logins_config(apps),
        select_rules(load_rules(), (rule_id,)),
    )
    found = {(f.resource, f.principal): f for f in results.findings}
    return found["database/app0000_db", "role/legacy_00000"], results


def test_a_group_given_many_schemas_by_default_is_one_bounded_finding_per_member() -> None:
    schemas = 3 * MAX_LISTED
    # legacy_00000 is in app0000_ro: every schema's default of app0000_db, through it.
    finding, results = _first_member_finding("PGW-ISO-006", schemas=schemas)
    evidence = finding.evidence
    assert [e["schema"] for e in evidence["default_acl_entries"]] == [
        f"s{n:04d}" for n in range(MAX_WAYS_SHOWN)
    ]
    assert evidence["default_acl_entries_total"] == schemas
    assert "pg_default_acl" in evidence["default_acl_entries_more"]
    assert len(evidence["access"]) == MAX_WAYS_SHOWN
    assert evidence["access_total"] == schemas
    assert {a["grantee"] for a in evidence["access"]} == {"app0000_ro"}
    assert "SELECT on every new table created by 'app0000_owner'" in finding.message
    script = finding.remediation or ""
    assert "REVOKE app0000_ro FROM legacy_00000" in script
    assert f"in schema s0002 and {schemas - 3} more" in script
    # One finding per foreign member and database, none per schema.
    assert not [f for f in results.findings if f.resource.startswith("schema/")]
    assert len(finding.model_dump_json()) <= MAX_FINDING_BYTES


def test_defaults_through_a_group_of_no_app_keep_its_first_grants_as_alternatives() -> None:
    # readers, a group of no app, is given each schema's new tables too: ending the
    # membership is the fix, revoking the group's defaults the alternative, of which
    # the script names the first three and counts the rest.
    schemas = 10
    data = unmapped_logins_snapshot(4, 40, schemas=schemas).model_dump(mode="json")
    for detail in data["servers"][0]["postgres"]["database_details"]:
        for entry in detail["default_privileges"]:
            grant = {"grantee": "readers", "grantor": entry["role"], "privileges": ["SELECT"]}
            entry["acl"].append(grant)
    results = evaluate(
        Snapshot.model_validate(data),
        unmapped_logins_config(4),
        select_rules(load_rules(), ("PGW-ISO-006",)),
    )
    # legacy_00004 is in app0000_ro and in readers: one finding, a block for each.
    found = {(f.resource, f.principal): f for f in results.findings}
    finding = found["database/app0000_db", "role/legacy_00004"]
    assert finding.evidence["default_acl_entries_total"] == schemas
    assert finding.evidence["access_total"] == 2 * schemas
    script = (finding.remediation or "").splitlines()
    assert script[0] == "-- run in database app0000_db (psql: \\connect app0000_db)"
    assert "REVOKE app0000_ro FROM legacy_00004;" in script
    assert "REVOKE readers FROM legacy_00004;" in script
    revoke = "ALTER DEFAULT PRIVILEGES FOR ROLE app0000_owner IN SCHEMA {} REVOKE SELECT ON"
    assert [line for line in script if line.startswith("-- alternative: ")] == [
        *(f"-- alternative: {revoke.format(f's{n:04d}')} TABLES FROM readers;" for n in range(3)),
        f"-- alternative: the same for its {schemas - 3} other grants (the evidence counts them)",
    ]


def test_a_group_handing_over_many_tables_is_one_bounded_finding_per_member() -> None:
    tables = 3 * MAX_LISTED
    # legacy_00000 is in app0000_ro: every table of app0000_db, through the group.
    finding, results = _first_member_finding("PGW-ISO-004", tables=tables)
    evidence = finding.evidence
    assert evidence["access_total"] == tables
    assert evidence["held_on"] == [f"TABLE app.t{n:04d}" for n in range(MAX_LISTED)]
    assert evidence["held_on_total"] == tables
    assert "legacy_00000" in evidence["held_on_more"]
    assert len(evidence["access"]) == 1
    assert evidence["access"][0]["grantee"] == "app0000_ro"
    assert (
        f"holds SELECT on TABLE app.t0000, TABLE app.t0001, TABLE app.t0002 and "
        f"{tables - 3} more through 'app0000_ro'" in finding.message
    )
    assert "REVOKE app0000_ro FROM legacy_00000" in (finding.remediation or "")
    # One finding per foreign member and database, none per table.
    assert not [f for f in results.findings if f.resource.startswith("table/")]


@pytest.mark.parametrize(
    "rule", [PrivilegedDefinerEscalation, ForeignDefinerEscalation, DefinerCalledAcrossApps]
)
def test_definer_rules_work_grows_with_the_routines_not_roles_times_routines(
    rule: type[Rule],
) -> None:
    # PUBLIC's EXECUTE reaches every role that can connect: counted once per database,
    # never listed per routine (which made the work roles times routines).
    small = _rule_calls(rule, *SMALL, definers=True)
    large = _rule_calls(rule, *LARGE, definers=True)
    assert large / small < 2.6, (small, large)


def test_definer_evidence_counts_every_caller_and_lists_the_first() -> None:
    rules = select_rules(load_rules(), ("PGW-FUNC-*",))
    apps, logins = LARGE
    results = evaluate(
        unmapped_logins_snapshot(apps, logins, definers=True), unmapped_logins_config(apps), rules
    )
    found = {(f.rule_id, f.resource): f for f in results.findings}
    # app0000_db lets PUBLIC connect: every principal of the server may call purge, the
    # admin's, but its owner; app0001_db does not: the app's two roles and the readers'
    # logins (every fourth login) may, and half the logins through the app's group.
    purge = found["PGW-FUNC-001", "function/app0000_db.app.purge()"]
    principals = 2 * apps + logins  # each app's svc and ro, and the logins
    assert purge.evidence["callers_total"] == principals
    callers = purge.evidence["callers"]
    assert list(callers) == sorted(callers) and len(callers) == MAX_LISTED
    assert set(callers.values()) == {"PUBLIC EXECUTE"}
    assert f"and {principals} principal(s) may call it" in purge.message
    # The service role owns export: the other apps' principals are counted, its own not.
    export = found["PGW-FUNC-002", "function/app0000_db.app.export(n integer)"]
    assert export.evidence["callers_total"] == principals - 2
    assert "app0000_svc" not in export.evidence["callers"]
    closed = found["PGW-FUNC-001", "function/app0001_db.app.purge()"]
    assert closed.evidence["callers_total"] < principals // 2


def test_a_mapping_for_public_is_counted_not_listed_per_role() -> None:
    # A mapping FOR PUBLIC on a server PUBLIC may use serves everyone who can connect.
    small = _rule_calls(ForeignRoleUsesChannel, *SMALL, channels=True)
    large = _rule_calls(ForeignRoleUsesChannel, *LARGE, channels=True)
    assert large / small < 2.6, (small, large)
    apps, logins = LARGE
    results = evaluate(
        unmapped_logins_snapshot(apps, logins, channels=True),
        unmapped_logins_config(apps),
        select_rules(load_rules(), ("PGW-CHAN-002",)),
    )
    found = {f.resource: f for f in results.findings}
    # app0000_db lets PUBLIC connect: every principal but app0001's own two roles (the
    # target's) opens the channel to app0001_db.
    public = found["foreign-server/app0000_db.to_next"]
    assert public.evidence["principals_total"] == 2 * apps + logins - 2
    assert len(public.evidence["principals"]) == MAX_LISTED
    assert "app0001_svc" not in public.evidence["principals"]
    assert f"PUBLIC ({2 * apps + logins - 2} principal(s) of other apps)" in public.message


def test_many_mappings_into_one_database_cost_the_mappings_not_their_square() -> None:
    # One principal of a third app reaches a foreign server through each of its many
    # groups, each group with a mapping: who may use the server is one fact about the
    # server, not asked again of its whole ACL for every mapping (that was mappings
    # squared: 13.8 s of evaluation at 2,000 mappings).
    apps, logins = SMALL

    def calls(groups: int) -> int:
        snapshot = many_mappings_snapshot(apps, logins, groups)
        server, context = only_server(snapshot, unmapped_logins_config(apps))
        verdicts = list(ForeignRoleUsesChannel().check(server, context))
        assert {v.principal for v in verdicts} >= {"role/fdw0000"}, verdicts[:1]
        count, _ = _calls_while(lambda: ForeignRoleUsesChannel().check(server, context))
        return count

    small, large = calls(100), calls(200)
    assert large / small < 2.6, (small, large)


def test_mappings_hidden_from_the_auditor_are_one_error_per_foreign_server() -> None:
    # 200 mappings whose options only their roles may read: one cause, one check, one
    # error for the server (one each was 10,000 errors at 500 servers of 20 mappings).
    apps, logins = SMALL
    results = evaluate(
        many_mappings_snapshot(apps, logins, 200, visible=False),
        unmapped_logins_config(apps),
        select_rules(load_rules(), ("PGW-CHAN-003",)),
    )
    [error] = [
        f
        for f in results.findings
        if f.status == "error" and f.resource == "foreign-server/app0000_db.to_next"
    ]
    assert error.principal is None
    assert error.evidence["hidden_mappings_total"] == 200
    assert len(error.evidence["hidden_mappings"]) == MAX_WAYS_SHOWN
    assert "the options of 200 user mappings (for role 'fdw0000', role 'fdw0001', role " in (
        error.message
    )
    assert "only each mapped role itself or a superuser may read them" in error.message
    assert len(error.model_dump_json()) <= MAX_FINDING_BYTES


def test_an_app_role_deep_in_a_lattice_of_groups_has_a_finding_of_a_few_kilobytes() -> None:
    # app0000_svc reaches pg_read_all_data through 24 layers of two groups each, every
    # group in both of the next layer's: 2^24 paths of 26 roles. The finding shows the
    # first few paths within a budget of role names and the first grants, and counts
    # the rest.
    apps, logins = SMALL
    data = unmapped_logins_snapshot(apps, logins).model_dump(mode="json")
    pg = data["servers"][0]["postgres"]
    layers = [[f"layer{n:02d}_{side}" for side in "ab"] for n in range(24)]
    pg["roles"] += [{"name": name, "login": False} for layer in layers for name in layer]
    pg["roles"].append({"name": "pg_read_all_data", "login": False})
    pg["memberships"] += [{"member": "app0000_svc", "role": name} for name in layers[0]]
    pg["memberships"] += [
        {"member": member, "role": role}
        for below, above in pairwise(layers)
        for member in below
        for role in above
    ]
    pg["memberships"] += [{"member": name, "role": "pg_read_all_data"} for name in layers[-1]]
    results = evaluate(
        Snapshot.model_validate(data),
        unmapped_logins_config(apps),
        select_rules(load_rules(), ("PGW-ROLE-002",)),
    )
    [found] = [f for f in results.findings if f.resource == "role/pg_read_all_data"]
    assert len(found.model_dump_json(exclude_none=True)) <= MAX_FINDING_BYTES
    assert found.evidence["paths_total"] > len(found.evidence["paths"])
    assert "membership_grants_more" in found.evidence
    # Both first grants are revoked: every way in starts with one of them.
    assert "REVOKE layer00_a FROM app0000_svc;" in str(found.remediation)
    assert "REVOKE layer00_b FROM app0000_svc;" in str(found.remediation)


def test_alternative_cuts_keep_each_membership_whole() -> None:
    # From PostgreSQL 16 a membership granted by two roles takes two REVOKEs: an
    # alternative cut shows both or neither, and the count names the ones left out.
    apps, logins = SMALL
    data = unmapped_logins_snapshot(apps, logins).model_dump(mode="json")
    pg = data["servers"][0]["postgres"]
    chain = [f"link{n:02d}" for n in range(8)]
    pg["roles"] += [{"name": name, "login": False} for name in [*chain, "pg_read_all_data"]]
    pg["roles"].append({"name": "other_admin", "login": True, "createrole": True})
    steps = list(pairwise(["app0000_svc", *chain, "pg_read_all_data"]))
    pg["memberships"] += [
        {"member": member, "role": role, "grantor": grantor}
        for member, role in steps
        for grantor in ("admin", "other_admin")
    ]
    results = evaluate(
        Snapshot.model_validate(data),
        unmapped_logins_config(apps),
        select_rules(load_rules(), ("PGW-ROLE-002",)),
    )
    [found] = [f for f in results.findings if f.resource == "role/pg_read_all_data"]
    lines = str(found.remediation).splitlines()
    shown = [line for line in lines if line.startswith("-- or, for every member of")]
    assert shown and len(shown) % 2 == 0
    for member, role in steps[1:]:
        revokes = [line for line in shown if f"REVOKE {role} FROM {member} GRANTED BY" in line]
        assert len(revokes) in (0, 2), (member, role)
    written = len(shown) // 2
    assert f"-- … and {len(steps) - 1 - written} more memberships further along the chains" in (
        "\n".join(lines)
    )
