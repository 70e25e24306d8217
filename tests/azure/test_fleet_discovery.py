"""[fleet] discovery through Resource Graph, with the real azure-core pipeline, against
the HTTPS fake: paging, the per-user quota, failures, filters, maps and DSN templates."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from pgwarden.collect.azure.cloud import AzureSession
from pgwarden.collect.azure.fleet import FLEET_QUERY, discover_fleet
from pgwarden.collect.azure.resource_graph import GraphQuery, ResourceGraphClient
from pgwarden.collect.azure.throttle import QueryPacer, quota_reset_seconds
from pgwarden.collect.plan import plan_scan
from pgwarden.model.config import Config, parse_config
from pgwarden.model.errors import ConfigError
from pgwarden.model.fleet import FleetMaps, load_fleet_maps
from pgwarden.model.shards import parse_shard
from tests.azure.conftest import make_session
from tests.azure.fakes import (
    SUBSCRIPTION,
    TOKEN_CANARY,
    FakeAzure,
    GraphQuota,
    StaticCredential,
    TlsFixture,
    graph_row,
)

EXAMPLES = Path(__file__).parent / "examples"
OTHER_SUBSCRIPTION = "22222222-2222-2222-2222-222222222222"


def fleet_config(fake: FakeAzure, fleet: str = "", path: str = "pgwarden.toml") -> Config:
    text = f"""
[azure]
arm_endpoint = "{fake.arm_url}"

[fleet]
discover = "resource-graph"
{fleet}
"""
    return parse_config(text, path)


def test_azure_example_page_is_read_as_azure_documents_it(
    fake: FakeAzure, session: AzureSession
) -> None:
    example = json.loads((EXAMPLES / "ResourcesFirstPageQuery.json").read_text())
    fake.graph_canned.append(example["responses"]["200"]["body"])
    with ResourceGraphClient(session) as graph:
        page = graph.page(GraphQuery("Resources | project id, name"), None)
    assert [row["name"] for row in page.rows] == [
        "yetanothertest_OsDisk_1_f396cbcb625a457bb69fe2abf5975820",
        "TestAA",
        "TestRB",
    ]
    assert page.total_records == 386
    assert page.skip_token == example["responses"]["200"]["body"]["$skipToken"]


def test_every_page_is_read_with_its_skip_token(fake: FakeAzure, session: AzureSession) -> None:
    fake.graph_rows.extend(graph_row(f"pg-{i:04d}") for i in range(2_500))
    found = discover_fleet(fleet_config(fake), FleetMaps(None, {}), session)
    assert found.listed == 2_500
    assert [m.config.name for m in found.members] == sorted(f"pg-{i:04d}" for i in range(2_500))
    assert found.stats.pages_rows == [1_000, 1_000, 500]
    first, second, third = fake.graph_queries
    assert first["query"] == FLEET_QUERY and "subscriptions" not in first  # the whole tenant
    assert first["options"] == {"$top": 1000, "resultFormat": "objectArray"}
    assert "$skipToken" in second["options"] and "$skipToken" in third["options"]
    # Every call went through the ARM pipeline with the ARM token, never a token in output.
    auths = {auth for _h, path, auth in fake.requests if "ResourceGraph" in path}
    assert auths == {f"Bearer {TOKEN_CANARY}.https://management.azure.com/.default"}


def test_an_answer_cut_short_is_an_error_not_a_smaller_fleet(
    fake: FakeAzure, session: AzureSession
) -> None:
    # Resource Graph may truncate an answer (resultTruncated, no $skipToken): the
    # servers left out would be neither audited nor named, so discovery stops.
    fake.graph_rows.extend(graph_row(f"pg-{i:04d}") for i in range(1_500))
    fake.graph_truncate_at = 1_200
    with pytest.raises(ConfigError) as raised:
        discover_fleet(fleet_config(fake), FleetMaps(None, {}), session)
    assert str(raised.value) == (
        "[fleet] discover: Azure Resource Graph returned 1200 of 1500 rows and no way to "
        "read the rest (fix: narrow the discovery's scope, or run the scan again)"
    )


def test_filters_by_subscription_tag_and_name(fake: FakeAzure, session: AzureSession) -> None:
    fake.graph_rows.extend(
        [
            graph_row("payments-db", tags={"env": "prod", "team": "pay"}),
            graph_row("payments-dev", tags={"env": "dev"}),
            graph_row("Payments-Archive", tags={"ENV": "prod"}),
            graph_row("ledger-db", tags={"env": "prod"}),
            graph_row("payments-other", subscription=OTHER_SUBSCRIPTION, tags={"env": "prod"}),
        ]
    )
    config = fleet_config(
        fake, f'subscriptions = ["{SUBSCRIPTION}"]\ntags = {{ env = "prod" }}\nname = "payments-*"'
    )
    found = discover_fleet(config, FleetMaps(None, {}), session)
    assert [m.config.name for m in found.members] == ["Payments-Archive", "payments-db"]
    assert fake.graph_queries[0]["subscriptions"] == [SUBSCRIPTION]
    wildcard = fleet_config(fake, 'tags = { team = "*" }')
    assert [
        m.config.name for m in discover_fleet(wildcard, FleetMaps(None, {}), session).members
    ] == ["payments-db"]


def test_the_quota_left_is_respected(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    # Six pages against a quota of two queries a second: each answer says how many
    # queries are left and when the window resets; the client waits instead of asking.
    fake.graph_quota = GraphQuota(limit=2, window=1.0)
    fake.graph_rows.extend(graph_row(f"pg-{i:04d}") for i in range(5_500))
    session = make_session(fake, tls, credential, retry_after_budget_s=30.0)
    started = time.monotonic()
    found = discover_fleet(fleet_config(fake), FleetMaps(None, {}), session)
    assert found.listed == 5_500
    assert fake.graph_quota.refused == 0
    assert time.monotonic() - started >= 2.0  # six queries at two a second
    assert found.stats.waited_s > 0


def test_a_429_waits_for_the_reset_and_asks_again(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    fake.fail(
        "ResourceGraph",
        429,
        "RateLimiting",
        times=2,
        headers={"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:01"},
    )
    fake.graph_rows.extend(graph_row(f"pg-{i:04d}") for i in range(1_200))
    session = make_session(fake, tls, credential, retry_after_budget_s=30.0)
    started = time.monotonic()
    found = discover_fleet(fleet_config(fake), FleetMaps(None, {}), session)
    assert found.listed == 1_200 and found.stats.throttled == 2
    assert time.monotonic() - started >= 2.0


def test_a_pacer_under_the_quota_is_never_refused(
    fake: FakeAzure, tls: TlsFixture, credential: StaticCredential
) -> None:
    fake.graph_quota = GraphQuota(limit=3, window=1.0)
    fake.graph_rows.extend(graph_row(f"pg-{i:04d}") for i in range(6_500))
    session = make_session(fake, tls, credential)
    with ResourceGraphClient(session, QueryPacer(quota=3, window=1.05)) as graph:
        rows = list(graph.rows(GraphQuery(FLEET_QUERY)))
    assert len(rows) == 6_500
    assert fake.graph_quota.refused == 0 and graph.stats.throttled == 0


def test_throttling_beyond_the_budget_is_one_line(fake: FakeAzure, session: AzureSession) -> None:
    fake.fail(
        "ResourceGraph",
        429,
        "RateLimiting",
        headers={"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:10:00"},
    )
    with pytest.raises(ConfigError) as caught:
        discover_fleet(fleet_config(fake), FleetMaps(None, {}), session)
    message = str(caught.value)
    assert message.startswith("[fleet] discover: Azure throttled the request to query Azure ")
    assert "HTTP 429 RateLimiting" in message and "\n" not in message


def test_a_refused_query_names_the_role(fake: FakeAzure, session: AzureSession) -> None:
    fake.fail("ResourceGraph", 403, "AuthorizationFailed")
    with pytest.raises(ConfigError) as caught:
        discover_fleet(fleet_config(fake), FleetMaps(None, {}), session)
    assert str(caught.value) == (
        "[fleet] discover: Azure refused to query Azure Resource Graph for Flexible Servers "
        "(HTTP 403 AuthorizationFailed) (assign Reader on the subscriptions (or management "
        "group) to audit)"
    )


def test_reset_times_are_read_as_durations() -> None:
    assert quota_reset_seconds({"x-ms-user-quota-resets-after": "00:00:03"}) == 3
    assert quota_reset_seconds({"X-Ms-User-Quota-Resets-After": "01:02:03.5"}) == 3723.5
    assert quota_reset_seconds({"x-ms-user-quota-resets-after": "soon"}) is None
    assert quota_reset_seconds({}) is None


def test_the_dsn_template_gets_each_servers_values_and_nothing_else(
    fake: FakeAzure, session: AzureSession
) -> None:
    fake.graph_rows.extend(
        [
            graph_row("good-db", resource_group="rg-1"),
            # A name Azure would never allow, as a hostile Resource Graph row would have it.
            graph_row("evil' host=attacker.example password=x", fqdn="evil.example"),
            graph_row("spaced", fqdn="host.example sslmode=disable"),
        ]
    )
    template = (
        "host={fqdn} dbname=postgres user=pgwarden-auditor password=entra "
        "sslmode=verify-full application_name=pgwarden-{name}"
    )
    found = discover_fleet(
        fleet_config(fake, f'dsn_template = "{template}"'), FleetMaps(None, {}), session
    )
    members = {m.server.name: m for m in found.members}
    good = members["good-db"]
    assert good.dsn_problem is None and good.config.dsn is not None
    assert conninfo_to_dict(good.config.dsn) == {
        "host": "good-db.postgres.database.azure.com",
        "dbname": "postgres",
        "user": "pgwarden-auditor",
        "password": "entra",
        "sslmode": "verify-full",
        "application_name": "pgwarden-good-db",
    }
    assert good.config.azure is not None and good.config.azure.resource_group == "rg-1"
    for name in ("evil' host=attacker.example password=x", "spaced"):
        member = members[name]
        assert member.config.dsn is None
        assert member.dsn_problem is not None and "characters a DSN value may not" in (
            member.dsn_problem
        )


def test_maps_come_from_the_folder_by_name_or_by_tag(
    fake: FakeAzure, session: AzureSession, tmp_path: Path
) -> None:
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "payments-db.toml").write_text(
        'admin_role = "payadmin"\n[[app]]\nname = "payments"\ndatabases = ["payments"]\n'
    )
    (maps / "shared-ledger.toml").write_text(
        'dsn = "host=ledger.internal dbname=postgres user=auditor"\n'
        '[[app]]\nname = "ledger"\ndatabases = ["ledger"]\n'
    )
    fake.graph_rows.extend(
        [
            graph_row("payments-db"),
            graph_row("ledger-eu", tags={"pgwarden-map": "shared-ledger"}),
            graph_row("orphan-db"),
            graph_row("mistagged", tags={"pgwarden-map": "no-such-map"}),
        ]
    )
    config = fleet_config(
        fake,
        'maps = "maps"\ndsn_template = "host={fqdn} dbname=postgres user=auditor"',
        path=str(tmp_path / "pgwarden.toml"),
    )
    found = discover_fleet(config, load_fleet_maps(config), session)
    members = {m.config.name: m for m in found.members}
    payments = members["payments-db"].config
    assert (payments.tenancy_map, payments.admin_role, payments.app[0].name) == (
        True,
        "payadmin",
        "payments",
    )
    ledger = members["ledger-eu"].config
    assert ledger.app[0].name == "ledger" and ledger.dsn is not None
    assert conninfo_to_dict(ledger.dsn)["host"] == "ledger.internal"  # the map's own dsn
    assert members["orphan-db"].config.tenancy_map is False
    assert members["orphan-db"].map_note == "no map file named after it"
    assert members["mistagged"].config.tenancy_map is False
    assert "names map 'no-such-map'" in members["mistagged"].map_note


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "admin_role = [", "bad.toml: not valid TOML"),
        ("srv.toml", "colour = 'red'", "srv.toml: colour: unknown key"),
        ("srv.toml", 'azure = { subscription_id = "x" }', "srv.toml: azure: comes from Resource"),
        ("srv.toml", "[[app]]\nname = 3", "srv.toml: app.0.name: Input should be a valid string"),
    ],
)
def test_a_bad_map_file_is_one_line_naming_it(
    tmp_path: Path, fake: FakeAzure, name: str, text: str, message: str
) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / name).write_text(text)
    config = fleet_config(fake, 'maps = "maps"', path=str(tmp_path / "pgwarden.toml"))
    with pytest.raises(ConfigError) as caught:
        load_fleet_maps(config)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("fleet", "message"),
    [
        ('dsn_template = "host={host}"', "fleet.dsn_template: unknown placeholder {host}"),
        ('dsn_template = "host={fqdn"', "fleet.dsn_template: a lone '{' or '}'"),
        ('subscriptions = ["nope"]', "fleet.subscriptions: 'nope' is not a subscription id"),
        ("server_timeout_seconds = 0", "fleet.server_timeout_seconds: Input should be greater"),
        ('colour = "red"', "fleet.colour: unknown key"),
    ],
)
def test_fleet_config_errors_are_one_line(fleet: str, message: str) -> None:
    text = f'[fleet]\ndiscover = "resource-graph"\n{fleet}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "pgwarden.toml")
    assert str(caught.value).startswith(f"pgwarden.toml: {message}")


def test_shards_cover_the_fleet_exactly_once(fake: FakeAzure, session: AzureSession) -> None:
    fake.graph_rows.extend(
        graph_row(f"pg-{i:03d}", resource_group=f"rg{i % 7}") for i in range(300)
    )
    config = fleet_config(fake)
    whole = {t.config.name for t in plan_scan(config, azure=session).targets}
    parts = [
        {
            t.config.name
            for t in plan_scan(config, azure=session, shard=parse_shard(f"{i}/4")).targets
        }
        for i in range(4)
    ]
    assert set().union(*parts) == whole and sum(len(p) for p in parts) == len(whole) == 300
    assert all(40 < len(part) < 110 for part in parts)  # a hash, not one shard for all
    again = {
        t.config.name for t in plan_scan(config, azure=session, shard=parse_shard("2/4")).targets
    }
    assert again == parts[2]  # stable
