"""``pgwarden init`` on the demo server drafts a map that hides none of its violations;
``pgwarden demo`` runs end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgwarden.cli.demo import (
    ADMIN,
    AUDITOR,
    DEMO_CONFIG,
    RADAR_IDENTITY,
    SeedServer,
    app_sessions,
)
from pgwarden.model.config import ServerConfig, parse_config
from tests.cli import run_pgwarden

FAST_POLICY = "[policy]\nsession_samples = 2\nsession_window_seconds = 0.2\n"
# Rules that judge who may reach what, and who runs as the admin.
TENANCY_RULES = ("PGW-ADM-", "PGW-ISO-", "PGW-ROLE-", "PGW-MAP-")

pytestmark = pytest.mark.versioned

Finding = tuple[str, str, str | None]


def _fails(path: Path) -> set[Finding]:
    results = json.loads(path.read_text())
    return {
        (f["rule_id"], f["resource"], f.get("principal"))
        for f in results["findings"]
        if f["status"] == "fail" and f["rule_id"].startswith(TENANCY_RULES)
    }


@pytest.fixture(scope="module")
def drafted(
    seed_server: SeedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``init`` as the least-privilege auditor while the apps run, then scans of the
    draft and of the map the demo's owners meant, as the same auditor."""
    work = tmp_path_factory.mktemp("init")
    (work / "sampling.toml").write_text(FAST_POLICY)
    (work / "meant.toml").write_text(DEMO_CONFIG.replace("[policy]\n", FAST_POLICY, 1))
    env = {"PGWARDEN_DSN": seed_server.dsn(AUDITOR), "PGWARDEN_DEMO_DSN": seed_server.dsn(AUDITOR)}
    with app_sessions(seed_server):
        init = run_pgwarden(
            "init",
            "--dsn",
            "env:PGWARDEN_DSN",
            "--name",
            "ctxeco-db",
            "--config",
            "sampling.toml",
            "-o",
            "draft.toml",
            "--json",
            cwd=work,
            env=env,
        )
        assert init.returncode == 0, init.stderr
        (work / "draft.toml").write_text(
            (work / "draft.toml").read_text().replace("[policy]\n", FAST_POLICY, 1)
        )
        scans = {
            name: run_pgwarden(
                "scan",
                "--config",
                f"{name}.toml",
                "--json",
                f"{name}.json",
                "-q",
                cwd=work,
                env=env,
            )
            for name in ("draft", "meant")
        }
    for scan in scans.values():
        assert scan.returncode == 1, scan.stderr
    yield {"dir": work, "init": init, "json": json.loads(init.stdout)}


def _server(work: Path) -> ServerConfig:
    text = (work / "draft.toml").read_text()
    return parse_config(text, "draft.toml").server[0]


def test_scan_of_the_draft_finds_what_the_meant_map_finds(drafted: dict[str, Any]) -> None:
    work = drafted["dir"]
    draft, meant = _fails(work / "draft.json"), _fails(work / "meant.json")
    assert draft == meant, (sorted(draft - meant), sorted(meant - draft))
    rules = {rule for rule, _resource, _principal in draft}
    # The application running as the admin, and every cross-app grant and membership.
    assert {"PGW-ADM-001", "PGW-ISO-002", "PGW-ISO-004", "PGW-ROLE-002"} <= rules
    assert ("PGW-ISO-002", "database/ctxEco", "role/zep_app") in draft
    assert ("PGW-ISO-002", "database/secairadar", "role/temporal_app") in draft
    assert ("PGW-ISO-004", "table/secairadar.radar.findings", "role/ctxeco_app") in draft
    assert ("PGW-ROLE-002", "role/ctxeco_app", "role/temporal_app") in draft


def test_no_role_of_an_app_is_flagged_in_its_own_databases(drafted: dict[str, Any]) -> None:
    server = _server(drafted["dir"])
    results = json.loads((drafted["dir"] / "draft.json").read_text())
    for finding in results["findings"]:
        if not finding["rule_id"].startswith("PGW-ISO-") or not finding.get("principal"):
            continue
        role = finding["principal"].removeprefix("role/")
        database = finding["resource"].split("/", 1)[1].split(".")[0]
        own = server.app_of_role(role)
        assert own is None or database not in own.databases, finding


def test_the_draft_encodes_the_likely_intent(drafted: dict[str, Any]) -> None:
    server = _server(drafted["dir"])
    assert server.name == "ctxeco-db"
    assert server.admin_role == ADMIN  # not the auditor init connected as
    assert AUDITOR in server.platform_roles and "azure_pg_admin" in server.platform_roles
    apps = {app.name: app for app in server.app}
    assert {name: (app.databases, app.roles) for name, app in apps.items()} == {
        "ctxeco": (("ctxEco",), ("ctxeco_app",)),
        "secairadar": (("secairadar",), ("secairadar_app",)),
        "temporal": (("temporal", "temporal_visibility"), ("temporal_app",)),
        "zep": (("zep",), ("zep_app",)),
    }
    for app in server.app:
        assert ADMIN not in app.roles
    # The Entra managed identity's role is named by its object id, not listed as a role.
    assert apps["secairadar"].identities == (RADAR_IDENTITY,)
    text = (drafted["dir"] / "draft.toml").read_text()
    assert "# REVIEW: member of azure_pg_admin with CREATEROLE and CREATEDB" in text
    assert "#   zep_app → ctxEco: CONNECT granted to it" in text
    assert "#   temporal_app → app ctxeco: member of ctxeco_app" in text
    assert "1 live session(s) from 'secai-radar'" in text


def test_json_gives_the_review_list_most_important_first(drafted: dict[str, Any]) -> None:
    document = drafted["json"]
    assert "draft" not in document  # the draft went to the file
    assert document["admin"] == {
        "role": ADMIN,
        "source": "flexible-server",
        "evidence": "member of azure_pg_admin with CREATEROLE and CREATEDB, as Flexible "
        "Server's admin is; owns 5 of 5 app database(s)",
    }
    review = document["review"]
    order = {"high": 0, "medium": 1, "low": 2}
    assert [order[item["priority"]] for item in review] == sorted(
        order[item["priority"]] for item in review
    )
    kinds = {(item["kind"], item["subject"]) for item in review}
    assert {
        ("admin-guessed", f"role/{ADMIN}"),
        ("admin-in-use", "database/ctxEco"),
        ("cross-app-access", "role/zep_app"),
        ("cross-app-access", "role/temporal_app"),
        ("cross-app-access", "role/ctxeco_app"),
        ("grouped-databases", "app/temporal"),
        ("unowned-login", "role/legacy_etl"),
    } <= kinds
    # The admin's psql session is administration, not an application.
    assert ("admin-in-use", "database/secairadar") not in kinds
    zep = next(app for app in document["apps"] if app["name"] == "zep")
    assert zep["suspected_cross_app_access"] == [
        {"role": "zep_app", "app": "ctxeco", "database": "ctxEco", "how": "CONNECT granted to it"}
    ]


def test_without_sessions_ownership_and_names_still_decide(
    seed_server: SeedServer, tmp_path: Path
) -> None:
    """No application is running: the same apps, and the review list says what was not
    seen (nothing runs as the admin now, so nothing says so)."""
    (tmp_path / "sampling.toml").write_text(FAST_POLICY)
    run = run_pgwarden(
        "init",
        "--dsn",
        "env:PGWARDEN_DSN",
        "--config",
        "sampling.toml",
        "--json",
        cwd=tmp_path,
        env={"PGWARDEN_DSN": seed_server.dsn(AUDITOR)},
    )
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    apps = {app["name"]: [r["role"] for r in app["roles"]] for app in document["apps"]}
    assert apps == {
        "ctxeco": ["ctxeco_app"],
        "secairadar": ["secairadar_app"],
        "temporal": ["temporal_app"],
        "zep": ["zep_app"],
    }
    kinds = {item["kind"] for item in document["review"]}
    assert "no-sessions" in kinds and "admin-in-use" not in kinds
    assert parse_config(document["draft"], "draft.toml").server[0].admin_role == ADMIN


def test_init_as_the_admin_drafts_a_map_that_loads(seed_server: SeedServer, tmp_path: Path) -> None:
    """Connected as the admin, the evidence says it is the admin: it is no platform role."""
    env = {"ADMIN_DSN": seed_server.dsn(ADMIN)}
    (tmp_path / "sampling.toml").write_text(FAST_POLICY)
    args = ("init", "--dsn", "env:ADMIN_DSN", "--config", "sampling.toml")
    run = run_pgwarden(*args, "-o", "draft.toml", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "draft.toml").read_text()
    # Editors validate the draft against the schema init saved next to it.
    assert text.startswith("#:schema ./pgwarden.schema.json\n")
    schema = (tmp_path / "pgwarden.schema.json").read_text()
    assert schema == run_pgwarden("config", "schema").stdout
    assert env["ADMIN_DSN"] not in text and 'dsn = "env:ADMIN_DSN"' in text
    server = parse_config(text, "draft.toml").server[0]
    assert server.admin_role == ADMIN and ADMIN not in server.platform_roles
    assert AUDITOR in server.platform_roles  # holds only pg_monitor
    assert "review:" in run.stderr and "[high] role/zep_app" in run.stderr
    assert "GRANT pg_monitor TO pgwarden_auditor;" in text
    again = run_pgwarden(*args, "-o", "draft.toml", cwd=tmp_path, env=env)
    assert again.returncode == 2 and "exists" in again.stderr
    to_stdout = run_pgwarden(*args, "--json", cwd=tmp_path, env=env)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert json.loads(to_stdout.stdout)["draft"] == text


def test_demo_runs_and_writes_its_outputs(tmp_path: Path) -> None:
    run = run_pgwarden("demo", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "pgwarden-demo"
    results = json.loads((out / "results.json").read_text())
    rules = {f["rule_id"] for f in results["findings"] if f["status"] == "fail"}
    assert {"PGW-ISO-001", "PGW-ADM-001"} <= rules
    assert (out / "snapshot.json").exists() and (out / "pgwarden.toml").exists()
    assert "The throwaway server is gone" in run.stdout
    assert "password=" not in (out / "snapshot.json").read_text()
