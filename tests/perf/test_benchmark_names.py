"""``python -m benchmarks --long-names``: the same servers, named as tenants on Azure name them.

Each shape with ``--long-names`` is the same server as without: the same roles, logins,
memberships and databases, each renamed to a name near PostgreSQL's 63 bytes that
needs quotes. Built on a real server and scanned, it gives the same findings, rule by
rule, as the short names: a name that must be quoted changes what pgwarden writes,
never what it finds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.run import FULL_SIZE
from benchmarks.scenario import Plan
from benchmarks.shapes import SHAPES, Shape, long_named, scaled
from pgwarden.cli.localpg import LocalServer
from pgwarden.model.identifiers import quote_ident
from tests.perf.synthetic import SMALL, grown, scanned
from tests.pgserver import reset_server

NAMEDATALEN = 64  # PostgreSQL's names hold 63 bytes


def _renamed(short: Plan, long: Plan, roles: int, databases: int) -> dict[str, str]:
    """Each short name of the plan's roles and databases, with its long name."""
    pairs = list(zip(short.roles(roles), long.roles(roles), strict=True))
    names = {a.name: b.name for a, b in pairs}
    names |= {
        a.name: b.name
        for a, b in zip(short.databases(databases), long.databases(databases), strict=True)
    }
    return names


# Each shape at its size, and the one of most apps at the largest --scale (10,000 apps:
# the longest numbers in the names).
SIZES = [(shape, 1.0) for shape in SHAPES] + [(max(SHAPES, key=lambda s: s.plan.apps), 10.0)]


@pytest.mark.parametrize(("shape", "scale"), SIZES, ids=[f"{s.name}-x{k:g}" for s, k in SIZES])
def test_long_names_rename_the_same_server_near_the_limit(shape: Shape, scale: float) -> None:
    short = scaled(shape, scale).plan
    long = long_named(scaled(shape, scale)).plan
    size = FULL_SIZE.scaled(scale)
    names = _renamed(short, long, size.roles, size.databases)
    # Every name of the tenants (not the platform's roles) is renamed, to a name that
    # fits, needs quotes and is still unique.
    tenants = {s: n for s, n in names.items() if s != n}
    assert len(tenants) == len(names) - len(short.platform_roles())
    assert len(set(tenants.values())) == len(tenants)
    assert all(len(n.encode()) < NAMEDATALEN for n in tenants.values())
    assert all(quote_ident(n) != n for n in tenants.values())
    assert max(len(n.encode()) for n in tenants.values()) >= 54
    # The same roles otherwise: logins, limits, attributes and memberships.
    for a, b in zip(short.roles(size.roles), long.roles(size.roles), strict=True):
        assert (a.login, a.app, a.connection_limit, a.attributes) == (
            b.login,
            b.app,
            b.connection_limit,
            b.attributes,
        )
        assert tuple(names.get(g, g) for g in a.member_of) == b.member_of
    databases = zip(short.databases(size.databases), long.databases(size.databases), strict=True)
    for db, long_db in databases:
        assert (db.app, db.planted) == (long_db.app, long_db.planted)


def _scan(server: LocalServer, plan: Plan, out: Path) -> dict[str, object]:
    config, dsn = grown(server, plan, out)
    return scanned(config, dsn, out / "results.json")


@pytest.fixture(scope="module")
def both(
    pg_server: LocalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, object], dict[str, object]]]:
    short = _scan(pg_server, SMALL, tmp_path_factory.mktemp("short"))
    long = _scan(pg_server, replace(SMALL, long_names=True), tmp_path_factory.mktemp("long"))
    yield short, long
    reset_server(pg_server)


def _findings(results: dict[str, object]) -> list[dict[str, str]]:
    findings = results["findings"]
    assert isinstance(findings, list)
    return findings


def test_long_names_give_the_same_findings(
    both: tuple[dict[str, object], dict[str, object]],
) -> None:
    short, long = both
    by_rule = Counter(f["rule_id"] for f in _findings(short))
    # The scenario's planted mistakes are there to be found, in numbers.
    assert {"PGW-ISO-001", "PGW-ISO-002", "PGW-ISO-004", "PGW-ROLE-004"} <= set(by_rule)
    assert sum(by_rule.values()) > 50
    assert Counter(f["rule_id"] for f in _findings(long)) == by_rule
    # Each finding about the same place (a database, a schema in one, a role; the
    # map's own names too), its names renamed.
    long_plan = replace(SMALL, long_names=True)

    def renamed(name: str) -> str:
        for app in range(SMALL.apps):
            if name.startswith(SMALL.app_name(app)):
                return long_plan.app_name(app) + name.removeprefix(SMALL.app_name(app))
        if name.startswith("legacy_login_"):
            return long_plan.stray_name(int(name.rsplit("_", 1)[1]))
        return name

    def place(finding: dict[str, str], rename: bool) -> tuple[str, ...]:
        def name(value: str | None) -> str:
            if value is None or "/" not in value or not rename:
                return str(value)
            kind, rest = value.split("/", 1)
            if kind == "schema":
                database, schema = rest.split(".", 1)
                return f"{kind}/{renamed(database)}.{schema}"
            return f"{kind}/{renamed(rest)}"

        return (finding["rule_id"], name(finding["resource"]), name(finding.get("principal")))

    assert Counter(place(f, True) for f in _findings(short)) == Counter(
        place(f, False) for f in _findings(long)
    )


def test_long_names_are_quoted_in_every_script(
    both: tuple[dict[str, object], dict[str, object]],
) -> None:
    _short, long = both
    scripts = [f["remediation"] for f in _findings(long) if f.get("remediation")]
    assert scripts
    for script in scripts:
        for line in script.splitlines():
            if line.startswith("--"):
                continue
            # A tenant's name in a statement is always a quoted identifier or literal.
            assert "Contoso Zürich" not in line.replace('"Contoso Zürich', "").replace(
                "'Contoso Zürich", ""
            ), line
