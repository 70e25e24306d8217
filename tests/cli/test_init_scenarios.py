"""``pgwarden init`` on servers of other shapes: Azure-shaped, plain PostgreSQL, without
sessions, and with names that say nothing. Each is a real server set up as described,
drafted as ``init`` drafts it, and (where it matters) scanned with the draft."""

from __future__ import annotations

import secrets
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import LiteralString

import psycopg
import pytest
from psycopg import sql

from pgwarden.cli.draft_map import Draft, InitRequest, _toml_string, draft_map
from pgwarden.cli.localpg import LocalServer
from pgwarden.collect.run import collect
from pgwarden.engine import evaluate
from pgwarden.model.config import ServerConfig, parse_config
from pgwarden.rules.registry import load_rules
from tests.cli import run_pgwarden
from tests.pgserver import reset_server

AUDITOR = "auditor"
SAMPLING = "[policy]\nsession_samples = 2\nsession_window_seconds = 0.2\n"


@dataclass(frozen=True)
class Server:
    """A set-up server and the passwords of its login roles."""

    local: LocalServer
    passwords: dict[str, str]

    def dsn(self, role: str, dbname: str = "postgres") -> str:
        return self.local.dsn(role, self.passwords[role], dbname)

    @contextmanager
    def sessions(self, *logins: tuple[str, str, str]) -> Iterator[None]:
        """Keep (role, database, application) sessions open, as applications would."""
        with ExitStack() as stack:
            for role, database, application in logins:
                stack.enter_context(
                    psycopg.connect(self.dsn(role, database), application_name=application)
                )
            yield


def build(
    local: LocalServer,
    logins: Sequence[str],
    statements: Sequence[LiteralString],
    inside: Mapping[str, Sequence[LiteralString]] | None = None,
) -> Server:
    """Run the scenario's SQL as the bootstrap superuser; give each login a password."""
    reset_server(local)
    passwords = {role: secrets.token_urlsafe(12) for role in logins}
    with psycopg.connect(local.dsn(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        for role, password in passwords.items():
            conn.execute(
                sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), password)
            )
    for database, commands in (inside or {}).items():
        with psycopg.connect(local.dsn(dbname=database), autocommit=True) as conn:
            for command in commands:
                conn.execute(command)
    return Server(local, passwords)


def draft(server: Server, role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Draft:
    monkeypatch.setenv("INIT_DSN", server.dsn(role))
    (tmp_path / "sampling.toml").write_text(SAMPLING)
    return draft_map(
        InitRequest(dsn="env:INIT_DSN", name="shared", config_path=str(tmp_path / "sampling.toml"))
    )


def mapped(result: Draft) -> ServerConfig:
    """The draft as pgwarden reads it."""
    return parse_config(result.text, "draft.toml").server[0]


def apps_of(server: ServerConfig) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {app.name: (app.databases, app.roles) for app in server.app}


def review_kinds(result: Draft) -> set[tuple[str, str]]:
    return {(item.kind, item.subject) for item in result.review}


def test_azure_shaped_server_connected_as_its_admin(
    clean_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = build(
        clean_server,
        ["flexadmin", "backupadmin", AUDITOR, "datadog", "shop_rw", "blog_app"],
        [
            "CREATE ROLE azure_pg_admin NOLOGIN",
            "CREATE ROLE flexadmin CREATEDB CREATEROLE IN ROLE azure_pg_admin",
            "CREATE ROLE backupadmin CREATEDB CREATEROLE IN ROLE azure_pg_admin",
            f"CREATE ROLE {AUDITOR} IN ROLE pg_monitor",
            "CREATE ROLE datadog IN ROLE pg_monitor",
            "CREATE ROLE shop_rw",
            "CREATE ROLE blog_app",
            "CREATE DATABASE shop OWNER flexadmin",
            "CREATE DATABASE blog OWNER flexadmin",
        ],
        {
            "shop": [
                "CREATE SCHEMA shop AUTHORIZATION shop_rw",
                "CREATE TABLE shop.orders (id int)",
                "ALTER TABLE shop.orders OWNER TO shop_rw",
            ],
            "blog": [
                "GRANT CREATE ON SCHEMA public TO blog_app",
                "CREATE TABLE public.posts (id int)",
                "ALTER TABLE public.posts OWNER TO blog_app",
                "GRANT SELECT ON public.posts TO shop_rw",
            ],
        },
    )
    with server.sessions(("blog_app", "blog", "blog-web"), ("flexadmin", "shop", "shop-api")):
        result = draft(server, "flexadmin", tmp_path, monkeypatch)
    mapped_server = mapped(result)
    # Connected as the admin, and the evidence says it is: it is the admin, not a platform role.
    assert mapped_server.admin_role == "flexadmin"
    assert result.guess.admin.source == "flexible-server"
    assert set(mapped_server.platform_roles) == {AUDITOR, "datadog", "azure_pg_admin"}
    assert {p.role: p.why for p in result.guess.platform}["datadog"] == "holds only pg_monitor"
    assert apps_of(mapped_server) == {
        "blog": (("blog",), ("blog_app",)),
        "shop": (("shop",), ("shop_rw",)),
    }
    shop = next(app for app in result.guess.apps if app.name == "shop")
    assert [(c.role, c.database, c.how) for c in shop.cross_access] == [
        ("shop_rw", "blog", "SELECT on public.posts")
    ]
    kinds = review_kinds(result)
    assert {
        ("admin-guessed", "role/flexadmin"),
        ("admin-shaped", "role/backupadmin"),
        ("admin-in-use", "database/shop"),
        ("cross-app-access", "role/shop_rw"),
    } <= kinds
    assert result.review[0].priority == "high"


def test_plain_postgresql_without_sessions(
    clean_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off Azure the admin owns most app databases; an owner group's member is its app's;
    what init could not see, and that nothing was seen running, is in the review list."""
    server = build(
        clean_server,
        ["dba", AUDITOR, "wiki_app", "crm_app"],
        [
            "CREATE ROLE dba CREATEDB CREATEROLE",
            f"CREATE ROLE {AUDITOR} IN ROLE pg_monitor",
            "CREATE ROLE wiki_app",
            "CREATE ROLE crm_owner NOLOGIN",
            "CREATE ROLE crm_app IN ROLE crm_owner",
            "CREATE DATABASE wiki OWNER dba",
            "CREATE DATABASE crm OWNER dba",
            "CREATE DATABASE sandbox OWNER dba",
            "CREATE DATABASE payroll OWNER dba",
            "REVOKE CONNECT ON DATABASE payroll FROM PUBLIC",
        ],
        {
            "wiki": [
                "CREATE TABLE public.pages (id int)",
                "ALTER TABLE public.pages OWNER TO wiki_app",
            ],
            "crm": [
                "CREATE SCHEMA crm AUTHORIZATION crm_owner",
                "CREATE TABLE crm.contacts (id int)",
                "ALTER TABLE crm.contacts OWNER TO crm_owner",
            ],
        },
    )
    result = draft(server, AUDITOR, tmp_path, monkeypatch)
    mapped_server = mapped(result)
    assert mapped_server.admin_role == "dba"
    assert result.guess.admin == result.guess.admin.__class__(
        "dba", "owner", "owns 4 of 4 app database(s); CREATEROLE and CREATEDB"
    )
    assert mapped_server.platform_roles == (AUDITOR,)
    assert apps_of(mapped_server) == {
        "crm": (("crm",), ("crm_app", "crm_owner")),
        "payroll": (("payroll",), ()),
        "sandbox": (("sandbox",), ()),
        "wiki": (("wiki",), ("wiki_app",)),
    }
    crm = next(app for app in result.guess.apps if app.name == "crm")
    assert "owns through crm_owner" in crm.roles[0].evidence
    kinds = review_kinds(result)
    assert {
        ("admin-guessed", "role/dba"),
        ("no-sessions", "server/sessions"),
        ("no-roles", "app/sandbox"),
        ("database-unread", "database/payroll"),  # the auditor may not CONNECT there
    } <= kinds
    assert not {kind for kind, _ in kinds} & {"cross-app-access", "admin-in-use"}


def owned_databases(
    local: LocalServer, inside: Mapping[str, Sequence[LiteralString]] | None = None
) -> Server:
    """Plain PostgreSQL: databases shop and blog, each owned by the role of its name."""
    return build(
        local,
        [AUDITOR, "shop", "blog"],
        [
            f"CREATE ROLE {AUDITOR} IN ROLE pg_monitor",
            "CREATE ROLE shop",
            "CREATE ROLE blog",
            "CREATE DATABASE shop OWNER shop",
            "CREATE DATABASE blog OWNER blog",
        ],
        inside,
    )


def test_plain_postgresql_where_each_app_owns_its_database(
    clean_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No role owns most databases: the admin is the superuser initdb created."""
    server = owned_databases(clean_server)
    with server.sessions(("shop", "shop", "shop-api")):
        result = draft(server, AUDITOR, tmp_path, monkeypatch)
    with psycopg.connect(clean_server.dsn()) as conn:
        bootstrap = conn.execute("SELECT rolname FROM pg_roles WHERE oid = 10").fetchone()
    assert bootstrap is not None and result.guess.admin.role == bootstrap[0]
    assert result.guess.admin.source == "bootstrap"
    assert apps_of(mapped(result)) == {
        "blog": (("blog",), ("blog",)),
        "shop": (("shop",), ("shop",)),
    }
    assert ("no-sessions", "server/sessions") not in review_kinds(result)


def test_a_database_read_in_part_is_for_review(
    clean_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog the auditor may not read in one database: init drafts from the rest
    and asks for a review of what it could not weigh there."""
    server = owned_databases(clean_server, {"shop": ["REVOKE SELECT ON pg_class FROM PUBLIC"]})
    result = draft(server, AUDITOR, tmp_path, monkeypatch)
    [item] = [i for i in result.review if i.kind == "database-unread"]
    assert item.subject == "database/shop"
    assert item.message.startswith(
        "init read it only in part: its tables, views and sequences (permission denied for "
        "table pg_class) could not be read"
    )
    assert apps_of(mapped(result))["shop"] == (("shop",), ("shop",))


def test_names_that_say_nothing(
    clean_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``svc1`` and ``svc2``: ownership and sessions decide; a role working in another
    app's database stays suspected cross-app access, one working evenly in two apps
    (``svc3``) is in neither, and the scan of the draft reports both."""
    server = build(
        clean_server,
        [AUDITOR, "svc1", "svc2", "svc3"],
        [
            f"CREATE ROLE {AUDITOR} IN ROLE pg_monitor",
            "CREATE ROLE svc1",
            "CREATE ROLE svc2",
            "CREATE ROLE svc3",
            "CREATE DATABASE orders",
            "CREATE DATABASE orders_history",
            "CREATE DATABASE billing",
            "REVOKE CONNECT, TEMPORARY ON DATABASE orders FROM PUBLIC",
            f"GRANT CONNECT ON DATABASE orders TO svc1, svc2, svc3, {AUDITOR}",
        ],
        {
            "orders": ["CREATE TABLE public.o (id int)", "ALTER TABLE public.o OWNER TO svc1"],
            "orders_history": [
                "CREATE TABLE public.h (id int)",
                "ALTER TABLE public.h OWNER TO svc1",
            ],
            "billing": [
                "CREATE TABLE public.invoices (id int)",
                "ALTER TABLE public.invoices OWNER TO svc2",
            ],
        },
    )
    with server.sessions(
        ("svc1", "orders", "orders-api"),
        ("svc2", "billing", "billing-api"),
        ("svc2", "orders", "billing-api"),
        ("svc3", "orders", "reports"),
        ("svc3", "billing", "reports"),
    ):
        result = draft(server, AUDITOR, tmp_path, monkeypatch)
        # The draft's dsn is the env: reference init was given, pointing at the auditor.
        config = parse_config(result.text.replace("[policy]\n", SAMPLING, 1), "draft.toml")
        findings = evaluate(collect(config), config, load_rules()).findings
    assert apps_of(mapped(result)) == {
        "billing": (("billing",), ("svc2",)),
        "orders": (("orders", "orders_history"), ("svc1",)),
    }
    billing = next(app for app in result.guess.apps if app.name == "billing")
    assert [(c.role, c.database) for c in billing.cross_access] == [("svc2", "orders")]
    assert "1 live session(s) from 'billing-api'" in billing.cross_access[0].how
    assert [(s.role, s.apps) for s in result.guess.split] == [("svc3", ("billing", "orders"))]
    kinds = review_kinds(result)
    assert {
        ("cross-app-access", "role/svc2"),
        ("split-evidence", "role/svc3"),
        ("grouped-databases", "app/orders"),
    } <= kinds
    failing = {(f.rule_id, f.resource, f.principal) for f in findings if f.status == "fail"}
    assert ("PGW-ISO-002", "database/orders", "role/svc2") in failing
    assert ("PGW-ISO-002", "database/orders", "role/svc3") in failing
    assert not [
        f for f in findings if f.rule_id.startswith("PGW-ISO-") and f.principal == "role/svc1"
    ]


def test_hostile_names_stay_inside_their_strings(
    clean_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role or database name with a line break, quotes, brackets or other control
    characters (DEL, which JSON leaves raw and TOML forbids, among them) cannot end a
    comment or a string of the draft: the map loads and names them exactly."""
    role, database = 'odd"\n[[server]]\nrole\x7f', "odd db\n# REVIEW\x7f\x1b\t"
    server = build(clean_server, [AUDITOR], [f"CREATE ROLE {AUDITOR} IN ROLE pg_monitor"])
    with psycopg.connect(clean_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with psycopg.connect(clean_server.dsn(dbname=database), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(role), sql.Identifier(role)
            )
        )
    result = draft(server, AUDITOR, tmp_path, monkeypatch)
    config = parse_config(result.text, "draft.toml")
    assert len(config.server) == 1
    assert apps_of(config.server[0]) == {"odd-db-review": ((database,), (role,))}


def test_azure_options_need_a_subscription(tmp_path: Path) -> None:
    run = run_pgwarden(
        "init", "--dsn", "host=127.0.0.1 port=1", "--resource-group", "rg", cwd=tmp_path
    )
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "pgwarden: error: --resource-group and --server-name need --azure-subscription"
    )


def test_every_character_a_name_may_hold_survives_a_toml_string() -> None:
    # PostgreSQL names may hold any character but NUL.
    name = "".join(chr(c) for c in range(1, 0x80)) + "é→\u202e\u200b😀\U0010fffd"
    assert tomllib.loads(f"name = {_toml_string(name)}")["name"] == name
