"""Many servers in one config: one results document; a failing server fails alone."""

from __future__ import annotations

import re
import socket

import jsonschema

from pgwarden.model.results import shipped_results_schema
from tests.gate.conftest import Workspace, config_text

SERVERS = {"east": "env:EAST_DSN", "west": "env:WEST_DSN"}


def _closed_port_dsn() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there once the socket is closed: the connection is refused at once.
    return f"host=127.0.0.1 port={port} user=nobody password=x dbname=postgres sslmode=disable"


def _env(workspace: Workspace, *, west_up: bool) -> dict[str, str]:
    dsn = workspace.server.dsn()
    return {"EAST_DSN": dsn, "WEST_DSN": dsn if west_up else _closed_port_dsn()}


def test_one_unreachable_server_makes_the_scan_incomplete_not_failed(workspace: Workspace) -> None:
    workspace.create_database("alpha", public_connect=False)
    workspace.write("pgwarden.toml", config_text({"alpha": "alpha"}, servers=SERVERS))
    run = workspace.pgwarden(
        "scan", "--rules", "PGW-ISO-001", "--json", "r.json", "-q",
        env=_env(workspace, west_up=False),
    )  # fmt: skip
    assert run.exit_code == 3, run.output
    results = workspace.json("r.json")
    jsonschema.Draft202012Validator(shipped_results_schema()).validate(results)
    assert [(s["name"], s["complete"]) for s in results["servers"]] == [
        ("east", True),
        ("west", False),
    ]
    assert results["scan"]["complete"] is False
    errors = [f for f in results["findings"] if f["status"] == "error"]
    assert [(f["server"], f["rule_id"], f["resource"]) for f in errors] == [
        ("west", "PGW-ISO-001", "server/west")
    ]
    assert "could not be evaluated" in errors[0]["message"]
    coverage = {(c["server"], c["outcome"]) for c in results["coverage"]}
    assert coverage == {("east", "passed"), ("west", "error")}


def test_violations_elsewhere_still_fail_the_gate(workspace: Workspace) -> None:
    workspace.create_database("alpha", public_connect=True)
    workspace.write("pgwarden.toml", config_text({"alpha": "alpha"}, servers=SERVERS))
    history = str(workspace.path / "history.sqlite")
    scan = ("scan", "--rules", "PGW-ISO-001", "--history", history, "--json", "r.json", "-q")
    first = workspace.pgwarden(*scan, env=_env(workspace, west_up=True))
    assert first.exit_code == 1, first.output
    assert {f["server"] for f in workspace.json("r.json")["findings"]} == {"east", "west"}

    second = workspace.pgwarden(*scan, env=_env(workspace, west_up=False))
    assert second.exit_code == 1, second.output
    results = workspace.json("r.json")
    by_server = {s["server"]: s for s in results["history"]["servers"]}
    # west could not be looked at: its finding is not resolved, nothing is new.
    assert by_server["west"]["resolved"] == [] and by_server["west"]["new"] == []
    assert by_server["east"]["resolved"] == [] and by_server["east"]["new"] == []
    assert results["history"]["resolved"] == 0
    assert by_server["west"].get("previous_run") == 1

    # west is back, alpha was fixed meanwhile: west compares with run 1, where it was seen.
    workspace.sql("REVOKE CONNECT, TEMPORARY ON DATABASE alpha FROM PUBLIC")
    third = workspace.pgwarden(*scan, env=_env(workspace, west_up=True))
    assert third.exit_code == 0, third.output
    by_server = {s["server"]: s for s in workspace.json("r.json")["history"]["servers"]}
    assert by_server["west"]["previous_run"] == 1
    assert [r["resource"] for r in by_server["west"]["resolved"]] == ["database/alpha"]
    assert by_server["east"]["previous_run"] == 2
    assert [r["resource"] for r in by_server["east"]["resolved"]] == ["database/alpha"]


def test_every_server_unreachable_is_nothing_scanned(workspace: Workspace) -> None:
    workspace.write("pgwarden.toml", config_text({}, servers=SERVERS))
    env = {"EAST_DSN": _closed_port_dsn(), "WEST_DSN": _closed_port_dsn()}
    run = workspace.pgwarden("scan", "-q", env=env)
    assert run.exit_code == 2
    assert run.stderr.startswith("pgwarden: error: nothing was scanned: east: ")


def test_a_fleet_out_of_reach_is_told_in_one_short_line(workspace: Workspace) -> None:
    servers = {f"db{n:02d}": f"env:DSN_{n:02d}" for n in range(10)}
    workspace.write("pgwarden.toml", config_text({}, servers=servers))
    env = {f"DSN_{n:02d}": _closed_port_dsn() for n in range(10)}
    run = workspace.pgwarden("scan", "-q", env=env)
    assert run.exit_code == 2
    (line,) = run.stderr.splitlines()
    assert line.startswith("pgwarden: error: nothing was scanned: db00: ")
    assert "db02: " in line and "db03: " not in line and line.endswith("; and 7 more")


def test_collect_says_when_it_reached_no_server_or_only_some(workspace: Workspace) -> None:
    # Before: a snapshot of nothing, written with exit 0, as if collected.
    workspace.create_database("alpha", public_connect=False)
    workspace.write("pgwarden.toml", config_text({"alpha": "alpha"}, servers=SERVERS))
    down = {"EAST_DSN": _closed_port_dsn(), "WEST_DSN": _closed_port_dsn()}
    none = workspace.pgwarden("collect", "-o", "none.json", "-q", env=down)
    assert none.exit_code == 2
    assert none.stderr.startswith("pgwarden: error: nothing was collected: east: ")
    assert len(none.stderr.splitlines()) == 1
    assert not (workspace.path / "none.json").exists()
    # One server down: the snapshot is written, with the failure in it; exit 3, as a
    # scan that could not see everything.
    some = workspace.pgwarden(
        "collect", "-o", "some.json", "-q", env=_env(workspace, west_up=False)
    )
    assert some.exit_code == 3, some.output
    assert "pgwarden: warning: west: " in some.stderr
    servers = {s["name"]: s for s in workspace.json("some.json")["servers"]}
    assert servers["east"]["postgres"] is not None and servers["west"]["errors"]
    scanned = workspace.pgwarden("scan", "--snapshot", "some.json", "--rules", "PGW-ISO-001", "-q")
    assert scanned.exit_code == 3


def test_plain_progress_lines_when_not_a_terminal(workspace: Workspace) -> None:
    workspace.create_database("alpha", public_connect=False)
    workspace.write("pgwarden.toml", config_text({"alpha": "alpha"}, servers=SERVERS))
    env = _env(workspace, west_up=False)
    run = workspace.pgwarden("scan", "--rules", "PGW-ISO-001", "--json", "r.json", env=env)
    assert run.exit_code == 3
    # (These tests read the server as its superuser: the one warning about that aside.)
    lines = [ln for ln in run.stderr.splitlines() if "least-privilege auditor" not in ln]
    assert lines[0] == "pgwarden: collecting 2 server(s)"
    assert any(
        re.fullmatch(
            r"pgwarden: \[[12]/2\] east: collected \(1 database\(s\) read, [\d.]+s\)", line
        )
        for line in lines
    ), lines
    assert any(re.match(r"pgwarden: \[[12]/2\] west: failed: cannot connect", ln) for ln in lines)
    assert len(lines) == 3, lines  # concise: no line per database

    quiet = workspace.pgwarden("scan", "--rules", "PGW-ISO-001", "-q", env=env)
    assert quiet.exit_code == 3
    assert [ln for ln in quiet.stderr.splitlines() if "least-privilege" not in ln] == []
