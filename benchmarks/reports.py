"""Report rendering at scale: 50,000 synthetic findings through every renderer.

The findings look like a fleet's: every rule of the catalogue, several servers and
many apps, evidence with membership chains and ACL items, remediation SQL. The
results are built through pgwarden's own models, so they are exactly what a scan
hands to the renderers. Each format is timed and sized; the HTML report is then
opened in Chromium (Playwright) and timed while it opens and while filters apply.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pgwarden import __version__
from pgwarden.engine import rule_info, summarize
from pgwarden.model.results import (
    AccessCell,
    Coverage,
    Finding,
    Results,
    ScanInfo,
    ServerSummary,
    Tool,
    fingerprint,
)
from pgwarden.rules.registry import load_rules
from tests.browser import CHROMIUM_ARGS

CHROMIUM = "/usr/bin/chromium"
FORMATS = ("json", "sarif", "html")


def synthetic_results(count: int, seed: int = 7, servers: int = 4, apps: int = 60) -> Results:
    """A results document with ``count`` findings spread over the whole catalogue."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    rules = [rule_info(entry) for entry in load_rules()]
    server_names = [f"shared-pg-{s:02d}" for s in range(servers)]
    app_names = [f"app{a:03d}" for a in range(apps)]
    started = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    findings: list[Finding] = []
    seen: set[str] = set()
    n = 0
    while len(findings) < count:
        rule = rules[n % len(rules)]
        server = server_names[rng.randrange(servers)]
        app = app_names[rng.randrange(apps)]
        other = app_names[rng.randrange(apps)]
        database = f"{app}_db{rng.randrange(40):02d}"
        table = f"app.t{rng.randrange(400):03d}"
        role = f"{other}_user_{rng.randrange(2000):04d}"
        resource = f"table/{database}.{table}" if n % 3 else f"database/{database}"
        principal = f"role/{role}"
        n += 1
        print_ = fingerprint(rule.id, server, resource, principal)
        if print_ in seen:
            continue
        seen.add(print_)
        status = "fail" if n % 50 else ("error" if n % 100 else "waived")
        findings.append(
            Finding(
                rule_id=rule.id,
                severity=rule.severity,
                status=status,
                server=server,
                app=app,
                resource=resource,
                principal=principal,
                message=(
                    f"role {role!r} of app {other!r} can SELECT {table} in database "
                    f"{database!r} of app {app!r} through {other}_team_012 → {app}_ro"
                ),
                evidence={
                    "via": "membership",
                    "path": [role, f"{other}_team_012", f"{app}_ro"],
                    "chain": f"{role} → {other}_team_012 → {app}_ro → SELECT",
                    "acl_item": {
                        "grantee": f"{app}_ro",
                        "grantor": f"{app}_owner",
                        "privileges": ["SELECT"],
                    },
                },
                remediation=(
                    f'REVOKE "{app}_ro" FROM "{other}_team_012";\n'
                    f"-- alternative: REVOKE SELECT ON {table} FROM {app}_ro;"
                ),
                fingerprint=print_,
            )
        )
    access = tuple(
        AccessCell(
            database=f"{app}_db00",
            app=app,
            principal=principal,
            via=via,
            violation=via != "own",
        )
        for a, app in enumerate(app_names)
        for principal, via in (
            (app, "own"),
            *((("PUBLIC", "public"),) if a % 7 == 0 else ()),
            *(((app_names[(a + 1) % apps], "membership"),) if a % 5 == 0 else ()),
        )
    )
    summaries = tuple(
        ServerSummary(
            name=name,
            version="16.4",
            host=f"{name}.postgres.database.azure.com",
            port=5432,
            connected_as="pgwarden_auditor",
            databases=apps * 2,
            roles=2500,
            access=access,
        )
        for name in server_names
    )
    coverage = tuple(
        Coverage(rule_id=rule.id, server=name, outcome="failed")
        for rule in rules
        for name in server_names
    )
    return Results(
        tool=Tool(version=__version__),
        scan=ScanInfo(
            started_at=started,
            finished_at=started + timedelta(seconds=42),
            complete=True,
            config="fleet.toml",
        ),
        servers=summaries,
        findings=tuple(findings),
        summary=summarize(findings, coverage),
        rules=tuple(rules),
        coverage=coverage,
    )


@dataclass
class Rendered:
    """One format: how long rendering took and how big the output is."""

    format: str
    seconds: float | None
    size: int | None
    path: Path | None
    note: str = ""
    cpu_seconds: float | None = None


def renderers() -> dict[str, Callable[[Results], str | bytes] | None]:
    """The renderers of the formats measured, None where pgwarden has none yet."""
    from pgwarden.reports.registry import RENDERERS

    found: dict[str, Callable[[Results], str | bytes] | None] = {}
    for name in FORMATS:
        entry = RENDERERS.get(name)
        found[name] = entry[0] if entry else None
    return found


def render_all(results: Results, out: Path) -> list[Rendered]:
    """Render ``results`` in every measured format into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    measured: list[Rendered] = []
    for name, renderer in renderers().items():
        if renderer is None:
            measured.append(Rendered(name, None, None, None, "no renderer in pgwarden yet"))
            continue
        started, cpu = time.perf_counter(), time.process_time()
        content = renderer(results)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = out / f"findings.{name}"
        path.write_bytes(data)
        measured.append(Rendered(name, seconds, len(data), path, cpu_seconds=cpu))
    return measured


@dataclass
class BrowserTimings:
    """How the HTML report behaves in Chromium (seconds), or why it was not measured."""

    load: float | None = None
    search: float | None = None
    rule_filter: float | None = None
    severity_filter: float | None = None
    matching: dict[str, int] | None = None
    note: str = ""


def measure_in_browser(html: Path, search_term: str) -> BrowserTimings:
    """Open the report, then time a search, a rule filter and a severity filter.

    Each filter is timed from the user's action to the moment the findings count
    says the new number (the search includes the report's typing debounce).
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        return BrowserTimings(note="playwright is not installed (scripts/setup.sh --test)")
    if not Path(CHROMIUM).exists():
        return BrowserTimings(note=f"no Chromium at {CHROMIUM}")
    timings = BrowserTimings(matching={})
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                started = time.perf_counter()
                page.goto(html.resolve().as_uri(), wait_until="load", timeout=120_000)
                # A selector, not a predicate: Playwright polls a predicate with eval,
                # which the report's CSP forbids, should the count come after "load".
                page.wait_for_selector("#pgw-count[data-matching]", state="attached")
                timings.load = time.perf_counter() - started

                def timed(action: Callable[[], Any], label: str) -> float:
                    before = page.eval_on_selector("#pgw-count", "e => e.textContent")
                    started = time.perf_counter()
                    action()
                    page.wait_for_function(
                        "prev => document.getElementById('pgw-count').textContent !== prev",
                        arg=before,
                        timeout=60_000,
                    )
                    elapsed = time.perf_counter() - started
                    assert timings.matching is not None
                    timings.matching[label] = int(
                        page.eval_on_selector("#pgw-count", "e => e.dataset.matching")
                    )
                    return elapsed

                timings.search = timed(lambda: page.fill("#pgw-search", search_term), "search")
                page.click("#pgw-reset")
                rule_value = page.eval_on_selector(
                    "#pgw-rule", "s => s.options.length > 1 ? s.options[1].value : ''"
                )
                timings.rule_filter = timed(
                    lambda: page.select_option("#pgw-rule", rule_value), "rule"
                )
                page.click("#pgw-reset")
                timings.severity_filter = timed(
                    lambda: page.click("#pgw-severity input[type=checkbox] >> nth=0"),
                    "severity",
                )
            finally:
                browser.close()
    except PlaywrightError as exc:
        timings.note = f"browser check failed: {str(exc).splitlines()[0]}"
    return timings
