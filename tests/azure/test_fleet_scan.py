"""A fleet scan as a user runs it: Resource Graph (the HTTPS fake) finds the servers, one
DSN template logs in to each (a real PostgreSQL), maps come from a folder; sharded
scans merged give the one-process document; one server's failure stays its own."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.engine import NO_TENANCY_MAP
from tests.azure.fakes import FakeAzure, FakeFlexibleServer, TlsFixture, graph_row
from tests.azure.test_cli_e2e import pgwarden
from tests.gate.conftest import Workspace

pytestmark = pytest.mark.azure


def fleet_server(name: str, fqdn: str, tags: dict[str, str] | None = None) -> FakeFlexibleServer:
    return FakeFlexibleServer(
        name=name,
        resource_group="fleet-rg",
        properties={
            "version": "16",
            "state": "Ready",
            "fullyQualifiedDomainName": fqdn,
            "backup": {"backupRetentionDays": 14, "geoRedundantBackup": "Disabled"},
            "network": {"publicNetworkAccess": "Disabled"},
        },
        configurations={"require_secure_transport": "on", "ssl_min_protocol_version": "TLSv1.2"},
        tags=tags or {},
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def fleet_workspace(
    path: Path, server: LocalServer, fake: FakeAzure, *, extra_maps: dict[str, str] | None = None
) -> Workspace:
    """A config whose [fleet] reaches the test server as every discovered server."""
    workspace = Workspace(path, server)
    template = (
        f"host={{fqdn}} port={server.port} user={server.superuser} dbname=postgres "
        "sslmode=disable connect_timeout=5"
    )
    workspace.write(
        "pgwarden.toml",
        f"""
[policy]
session_samples = 1
session_window_seconds = 0

[azure]
arm_endpoint = "{fake.arm_url}"

[fleet]
discover = "resource-graph"
dsn_template = "{template}"
maps = "maps"
""",
    )
    (path / "maps").mkdir()
    maps = {
        "db-a.toml": '[[app]]\nname = "alpha"\ndatabases = ["alpha"]\n',
        "shared.toml": '[[app]]\nname = "beta"\ndatabases = ["beta"]\n',
        **(extra_maps or {}),
    }
    for name, text in maps.items():
        workspace.write(f"maps/{name}", text)
    return workspace


@pytest.fixture
def fleet(
    fake: FakeAzure, clean_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """Five servers Resource Graph lists: three reach the test server (one mapped by
    name, one by tag, one without a map), one whose map's DSN reaches nothing, one ARM
    no longer knows, and a row whose host would inject DSN keywords."""
    monkeypatch.setenv("PGPASSWORD", clean_server.password)
    monkeypatch.delenv("PGWARDEN_HISTORY", raising=False)
    workspace = fleet_workspace(
        tmp_path,
        clean_server,
        fake,
        extra_maps={
            "db-down.toml": (
                f'dsn = "host=127.0.0.1 port={_closed_port()} user=x dbname=postgres '
                'sslmode=disable"\n'
            )
        },
    )
    workspace.create_database("alpha", public_connect=True)
    workspace.create_database("beta", public_connect=False)
    for server in (
        fleet_server("db-a", "127.0.0.1"),
        fleet_server("db-b", "127.0.0.1"),
        fleet_server("db-c", "127.0.0.1", {"pgwarden-map": "shared"}),
        fleet_server("db-down", "127.0.0.1"),
    ):
        fake.add_server(server)
    fake.graph_rows.append(graph_row("db-ghost", resource_group="fleet-rg", fqdn="127.0.0.1"))
    fake.graph_rows.append(graph_row("db-evil", fqdn="127.0.0.1 port=1 sslmode=disable"))
    fake.graph_rows.append(
        graph_row("db-mistagged", fqdn="127.0.0.1", tags={"pgwarden-map": "no-such-map"})
    )
    yield workspace


def _coverage(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["server"], c["rule_id"]): c for c in results["coverage"]}


def _without_times(results: dict[str, Any]) -> dict[str, Any]:
    scan = {
        k: v
        for k, v in results["scan"].items()
        if k not in ("started_at", "finished_at", "merged", "shard")
    }
    return {**results, "scan": scan}


def test_a_fleet_scan_audits_each_server_with_its_map(
    fleet: Workspace, fake: FakeAzure, tls: TlsFixture
) -> None:
    run = pgwarden(fake, tls, "scan", "--json", "all.json", "-q", cwd=fleet.path)
    assert run.returncode == 1, run.stderr
    assert (
        "pgwarden: warning: db-mistagged: tag pgwarden-map names map 'no-such-map', which "
        "the folder lacks\n" in run.stderr
    )
    results = fleet.json("all.json")
    assert [s["name"] for s in results["servers"]] == [
        "db-a",
        "db-b",
        "db-c",
        "db-down",
        "db-evil",
        "db-ghost",
        "db-mistagged",
    ]
    coverage = _coverage(results)
    # Mapped by name: the map's app is judged (alpha is open to PUBLIC).
    assert coverage["db-a", "PGW-ISO-001"]["outcome"] == "failed"
    fails = {(f["server"], f["rule_id"], f["resource"]) for f in results["findings"]}
    assert ("db-a", "PGW-ISO-001", "database/alpha") in fails
    # Mapped by its tag: beta is its app, and alpha belongs to none of its apps.
    assert coverage["db-c", "PGW-ISO-001"]["outcome"] == "passed"
    assert ("db-c", "PGW-MAP-001", "database/alpha") in fails
    # No map: the rules that need one are skipped, and the coverage says why.
    skipped = coverage["db-b", "PGW-ISO-001"]
    assert (skipped["outcome"], skipped["reason"]) == ("skipped", NO_TENANCY_MAP)
    assert coverage["db-b", "PGW-MAP-001"]["outcome"] == "skipped"
    assert coverage["db-b", "PGW-AUTH-001"]["outcome"] in ("passed", "failed")
    assert coverage["db-b", "PGW-TLS-001"]["outcome"] == "passed"  # ARM: secure transport on
    assert not any(
        f["server"] == "db-b" and f["rule_id"] == "PGW-MAP-001" for f in results["findings"]
    )
    # One server's failure is its own: the map's DSN reaches nothing, ARM lost one, one
    # host would have injected DSN keywords.
    by_name = {s["name"]: s for s in results["servers"]}
    assert by_name["db-down"]["errors"][0].startswith("cannot connect to x@127.0.0.1:")
    assert "Azure has no Flexible Server 'db-ghost'" in by_name["db-ghost"]["errors"][0]
    assert "characters a DSN value may not" in by_name["db-evil"]["errors"][-1]
    assert by_name["db-a"]["complete"] and by_name["db-c"]["complete"]
    assert results["scan"]["complete"] is False
    assert "port=1" not in json.dumps(by_name["db-evil"])  # nothing connected there


def test_shards_merged_equal_the_one_process_scan(
    fleet: Workspace, fake: FakeAzure, tls: TlsFixture
) -> None:
    whole = pgwarden(fake, tls, "scan", "--json", "all.json", "-q", cwd=fleet.path)
    assert whole.returncode == 1, whole.stderr
    for index in range(3):
        part = pgwarden(
            fake, tls, "scan", "--shard", f"{index}/3", "--servers-parallel", "2",
            "--json", f"part-{index}.json", "-q", cwd=fleet.path,
        )  # fmt: skip
        assert part.returncode in (0, 1, 3), part.stderr
        assert fleet.json(f"part-{index}.json")["scan"]["shard"] == f"{index}/3"
    names = [{s["name"] for s in fleet.json(f"part-{index}.json")["servers"]} for index in range(3)]
    assert sum(len(n) for n in names) == 7 and set().union(*names) == {
        s["name"] for s in fleet.json("all.json")["servers"]
    }
    merged = fleet.pgwarden(
        "merge", "part-0.json", "part-1.json", "part-2.json", "-o", "merged.json",
        "--html", "merged.html",
    )  # fmt: skip
    assert merged.exit_code == 1, merged.output
    assert "merged 3 part(s) of 3 shard(s): 7 server(s)" in merged.stderr
    result = fleet.json("merged.json")
    assert result["scan"]["merged"] == {"parts": 3, "shards": 3, "missing": []}
    assert _without_times(result) == _without_times(fleet.json("all.json"))
    assert (fleet.path / "merged.html").read_text().startswith("<!DOCTYPE html>")

    missing = fleet.pgwarden("merge", "part-0.json", "part-2.json", "-o", "some.json")
    assert missing.exit_code in (1, 3)
    assert "pgwarden: warning: missing shard(s): 1/3: their servers are not in the results" in (
        missing.stderr
    )
    some = fleet.json("some.json")
    assert some["scan"]["complete"] is False and some["scan"]["merged"]["missing"] == [1]
    # No control passes when a shard's servers were never seen.
    statuses = {c["status"] for fw in some["compliance"] for c in fw["controls"]}
    assert "pass" not in statuses and "error" in statuses

    twice = fleet.pgwarden("merge", "part-0.json", "part-0.json", "-o", "x.json")
    assert twice.exit_code == 2
    assert twice.stderr == (
        "pgwarden: error: merge: shard 0/3 is in both part-0.json and part-0.json\n"
    )


def test_a_server_over_its_time_budget_fails_alone(
    fake: FakeAzure, clean_server: LocalServer, tmp_path: Path, tls: TlsFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # A listener that never answers: the login waits for a reply that does not come.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        monkeypatch.setenv("PGPASSWORD", clean_server.password)
        workspace = fleet_workspace(
            tmp_path,
            clean_server,
            fake,
            extra_maps={
                "db-stuck.toml": f'dsn = "host=127.0.0.1 port={port} user=x dbname=postgres '
                'sslmode=disable connect_timeout=120"\n'
            },
        )
        fake.add_server(fleet_server("db-a", "127.0.0.1"))
        fake.add_server(fleet_server("db-stuck", "127.0.0.1"))
        run = pgwarden(
            fake, tls, "scan", "--server-timeout", "6", "--json", "r.json", cwd=workspace.path
        )
    assert run.returncode == 3, run.stderr
    results = workspace.json("r.json")
    by_name = {s["name"]: s for s in results["servers"]}
    assert by_name["db-a"]["complete"] is True
    assert by_name["db-stuck"]["errors"] == ["did not finish within its time budget of 6 s"]
    assert "db-stuck: failed: did not finish within its time budget of 6 s" in run.stderr


def test_a_fleet_snapshot_is_evaluated_offline_with_its_maps(
    fleet: Workspace, fake: FakeAzure, tls: TlsFixture
) -> None:
    run = pgwarden(
        fake, tls, "collect", "--shard", "0/1", "-o", "snapshot.json", "-q", cwd=fleet.path
    )
    # One server of the fleet is down: the snapshot is written, and collect says it is
    # incomplete, as a scan would.
    assert run.returncode == 3, run.stderr
    assert "pgwarden: warning: db-down: cannot connect to " in run.stderr
    offline = fleet.pgwarden("scan", "--snapshot", "snapshot.json", "--json", "offline.json", "-q")
    assert offline.exit_code == 1, offline.output
    coverage = _coverage(fleet.json("offline.json"))
    assert coverage["db-a", "PGW-ISO-001"]["outcome"] == "failed"  # its map, by name
    assert coverage["db-c", "PGW-ISO-001"]["outcome"] == "passed"  # its map, by tag
    assert coverage["db-b", "PGW-ISO-001"]["reason"] == NO_TENANCY_MAP
