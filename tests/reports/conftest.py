"""Fixtures of the renderer tests: a fixed results document, golden files, a browser."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pgwarden.model.compliance import compliance_of
from pgwarden.model.results import (
    AccessCell,
    Coverage,
    Finding,
    Results,
    ServerSummary,
    Summary,
    Waiver,
    fingerprint,
    load_results,
)

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "results.json"
GOLDEN = HERE / "golden"
REGENERATE = os.environ.get("PGWARDEN_REGEN_GOLDEN") == "1"

# Names an attacker who can create databases or roles controls, one per hazard:
# HTML and script injection, attribute break-out, JSON-block break-out, markdown
# syntax and mentions, quotes, non-ASCII and RTL text, a control character XML cannot hold.
HOSTILE = {
    "secai-radar": "<script>window.__pwned=1</script>",
    "ctxEco": '"><img src=x onerror="window.__pwned=1">',
    "zep_app": 'zep\'app "ü日本\u202etxt" *x*|y `z` @octo-org/team [l](javascript:x)',
    "temporal_app": "temporal\x07app</script><script>window.__pwned=1</script>",
}


def load_fixture() -> Results:
    return load_results(FIXTURE.read_text("utf-8"), str(FIXTURE))


@pytest.fixture
def results() -> Results:
    """The fixed results document every golden file is rendered from."""
    return load_fixture()


def _hostile(value: Any) -> Any:
    if isinstance(value, str):
        for name, replacement in HOSTILE.items():
            value = value.replace(name, replacement)
        return value
    if isinstance(value, dict):
        return {_hostile(k): _hostile(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hostile(v) for v in value]
    return value


def with_pass_records(results: Results) -> Results:
    """The results as ``--include-passed`` would have them: pass records added, each with
    the evidence of the state found compliant, and the compliance section judged again."""
    passes = [
        Finding(
            rule_id=rule_id,
            severity="high",
            status="pass",
            server=server,
            app=app,
            resource=resource,
            principal=principal,
            message=message,
            evidence=evidence,
            fingerprint=fingerprint(rule_id, server, resource, principal),
        )
        for rule_id, server, app, resource, principal, message, evidence in (
            (
                "PGW-ISO-001",
                "legacy-db",
                "billing",
                "database/billing",
                None,
                "PUBLIC cannot connect to database 'billing' of app 'billing'",
                {"database": "billing", "datacl": ["billing_owner=CTc/billing_owner"]},
            ),
            (
                "PGW-ISO-002",
                "legacy-db",
                "invoicing",
                "database/invoicing",
                None,
                "no role of another app holds CONNECT on database 'invoicing'",
                {"database": "invoicing", "datacl": ["invoicing_owner=CTc/invoicing_owner"]},
            ),
            (
                "PGW-ROLE-001",
                "ctxeco-db",
                "temporal",
                "role/temporal_app",
                "role/temporal_app",
                "role 'temporal_app' of app 'temporal' has none of SUPERUSER, CREATEROLE, ...",
                {"role": "temporal_app", "attributes": []},
            ),
        )
    ]
    updated = results.model_copy(update={"findings": (*results.findings, *passes)})
    return updated.model_copy(update={"compliance": compliance_of(updated)})


@pytest.fixture
def hostile_results() -> Results:
    """The fixture with app, database and role names that are markup in every format."""
    data = json.loads(FIXTURE.read_text("utf-8"))
    return Results.model_validate(_hostile(data))


@pytest.fixture
def golden() -> Callable[[str, str | bytes], None]:
    """Compare a rendering with its golden file (``PGWARDEN_REGEN_GOLDEN=1`` rewrites it)."""

    def check(name: str, rendered: str | bytes) -> None:
        if isinstance(rendered, bytes):
            rendered = rendered.decode("utf-8")
        path = GOLDEN / name
        if REGENERATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered, encoding="utf-8", newline="\n")
            return
        assert path.exists(), f"no golden file {path}; run with PGWARDEN_REGEN_GOLDEN=1"
        expected = path.read_text(encoding="utf-8")
        assert rendered == expected, (
            f"{name} differs from its golden file; if the change is intended, "
            "regenerate with PGWARDEN_REGEN_GOLDEN=1 and review the diff"
        )

    return check


def large_results(count: int, servers: int = 2) -> Results:
    """``count`` findings spread over servers, apps and rules, shaped like real ones."""
    base = load_fixture()
    rules = base.rules
    statuses = ("fail",) * 8 + ("waived", "error")
    waiver = Waiver(
        reason="accepted until the migration",
        owner="platform@example.com",
        expires=date(2027, 6, 30),
    )
    findings = []
    for i in range(count):
        rule = rules[i % len(rules)]
        server = f"server-{i % servers}"
        app = f"app-{i % 40:02d}"
        resource = f"database/db_{i:06d}"
        principal = f"role/{app}_role_{i % 7}"
        status = statuses[i % len(statuses)]
        findings.append(
            Finding(
                rule_id=rule.id,
                severity=("critical", "high", "medium", "low")[i % 4],
                status=status,
                server=server,
                app=app,
                resource=resource,
                principal=principal,
                message=(
                    f"role '{app}_role_{i % 7}' of app '{app}' can connect to database "
                    f"'db_{i:06d}' of another app through membership in 'reporting_{i % 13}'"
                ),
                evidence={
                    "via": "membership",
                    "path": [f"{app}_role_{i % 7}", f"reporting_{i % 13}"],
                    "acl_item": {"grantee": f"reporting_{i % 13}", "privileges": ["CONNECT"]},
                },
                remediation=f"REVOKE reporting_{i % 13} FROM {app}_role_{i % 7};",
                fingerprint=fingerprint(rule.id, server, resource, principal),
                waiver=waiver if status == "waived" else None,
                baseline_state=("new", "unchanged")[i % 2],
            )
        )
    names = [f"server-{n}" for n in range(servers)]
    return Results(
        tool=base.tool,
        scan=base.scan.model_copy(update={"locations": {f"server/{n}": 1 for n in names}}),
        servers=tuple(
            ServerSummary(
                name=name,
                version="16.4",
                access=(AccessCell(database="db", app="app-00", principal="app-00", via="own"),),
            )
            for name in names
        ),
        findings=tuple(findings),
        summary=Summary(fail=sum(1 for f in findings if f.status == "fail")),
        rules=rules,
        coverage=tuple(
            Coverage(rule_id=rule.id, server=name, outcome="failed")
            for name in names
            for rule in rules
        ),
    )


def hostile_large_results(count: int) -> Results:
    """``large_results`` with every seventh finding's app named as one of ``HOSTILE``'s
    names, each over every rule: markup all through a large report, its packed part too."""
    many = large_results(count)
    names = list(HOSTILE.values())
    findings = list(many.findings)
    for i in range(0, count, 7):
        # i // 7 picks the rule (eight of them, as i does); i // 56 the name.
        name = names[i // 56 % len(names)]
        findings[i] = findings[i].model_copy(
            update={
                "app": name,
                "principal": f"role/{name}",
                "message": f"role '{name}' of app '{name}' can connect to {findings[i].resource}",
                "evidence": {"path": [name, "reporting_1"], "acl_item": {"grantee": name}},
            }
        )
    return many.model_copy(update={"findings": tuple(findings)})


WIDE_SERVER = "fleet-db"


def wide_matrix_results(apps: int = 60, hostile: bool = False) -> Results:
    """The fixture plus a server whose access matrix is too large for a static table.

    Each app owns two databases; PUBLIC may connect to the first database of every
    tenth app, the next app reaches the second database of every seventh through
    membership, the app after next holds a direct grant on a few, and one role
    outside every app is granted one. With ``hostile``, an app and a database carry
    names that are markup.
    """
    names = [f"app-{n:02d}" for n in range(apps)]
    if hostile:
        names[3] = HOSTILE["secai-radar"]

    def database(n: int, which: int) -> str:
        if hostile and (n, which) == (0, 0):
            return HOSTILE["ctxEco"]
        return f"{names[n]}_db{which}"

    def reach(n: int, which: int, principal: str, via: Any) -> AccessCell:
        return AccessCell(
            database=database(n, which),
            app=names[n],
            principal=principal,
            via=via,
            violation=via != "own",
        )

    cells: list[AccessCell] = []
    for n, app in enumerate(names):
        cells += [reach(n, 0, app, "own"), reach(n, 1, app, "own")]
        if n % 10 == 0:
            cells.append(reach(n, 0, "PUBLIC", "public"))
        if n % 7 == 0:
            cells.append(reach(n, 1, names[(n + 1) % apps], "membership"))
        if n % 11 == 3:
            cells.append(reach(n, 0, names[(n + 2) % apps], "grant"))
    cells.append(reach(5, 0, "role/stray", "grant"))
    base = load_fixture()
    wide = ServerSummary(name=WIDE_SERVER, version="16.4", access=tuple(cells))
    return base.model_copy(update={"servers": (*base.servers, wide)})
