"""Three scheduled audits of one real server whose state changes between runs.

alpha: failing in run 1, fixed before run 2 (resolved; absent from the baseline).
bravo: clean in run 1, opened before run 2 (new; fails the gate), closed before run 3.
charlie: failing all along, waived until a date in the future (waived, never fails).
delta: failing all along, its waiver expired (fails again, listed as expired, but
       accepted by the baseline made after run 1, so it does not fail the gate).

Between runs the recorded runs are moved back in time (10 days, then 3 more), the way
a nightly audit's history looks, so ages and first-seen dates are real figures.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema

from pgwarden.model.results import shipped_results_schema
from tests.gate.conftest import Workspace, config_text, findings_by_resource

APPS = {name: name for name in ("alpha", "bravo", "charlie", "delta")}
RULE = "PGW-ISO-001"


def _shift_history(path: Path, days: int) -> None:
    """Move every recorded run ``days`` into the past (as if recorded then)."""
    with sqlite3.connect(path) as db:
        for run_id, started, finished in db.execute(
            "SELECT id, started_at, finished_at FROM pgwarden_runs"
        ).fetchall():
            back = timedelta(days=days)
            db.execute(
                "UPDATE pgwarden_runs SET started_at = ?, finished_at = ? WHERE id = ?",
                (
                    (datetime.fromisoformat(started) - back).isoformat(timespec="microseconds"),
                    (datetime.fromisoformat(finished) - back).isoformat(timespec="microseconds"),
                    run_id,
                ),
            )
        for fingerprint, first in db.execute(
            "SELECT fingerprint, first_seen FROM pgwarden_first_seen"
        ).fetchall():
            db.execute(
                "UPDATE pgwarden_first_seen SET first_seen = ? WHERE fingerprint = ?",
                (
                    (datetime.fromisoformat(first) - timedelta(days=days)).isoformat(
                        timespec="microseconds"
                    ),
                    fingerprint,
                ),
            )


def _html_findings(path: Path) -> dict[str, dict[str, Any]]:
    """The findings the HTML report embeds, keyed by resource."""
    text = path.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="pgw-data">(.*?)</script>', text, re.S)
    assert block is not None
    data = json.loads(block.group(1))
    assert data["packed"] is None  # a report this small has every finding's details plain
    columns = data["detail_columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in data["details"]]
    return {row["resource"]: row for row in rows}


def _sarif_results(path: Path) -> dict[str, dict[str, Any]]:
    sarif = json.loads(path.read_text(encoding="utf-8"))
    return {r["properties"]["resource"]: r for run in sarif["runs"] for r in run["results"]}


def _utc_text(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_three_scheduled_audits(workspace: Workspace) -> None:
    for name, public in (("alpha", True), ("bravo", False), ("charlie", True), ("delta", True)):
        workspace.create_database(name, public_connect=public)
    workspace.write("pgwarden.toml", config_text(APPS))
    today = datetime.now(UTC).date()
    workspace.write(
        "waivers.toml",
        f"""\
[[waiver]]
rule = "{RULE}"
resource = "database/charlie"
reason = "charlie moves to its own server next quarter"
owner = "charlie-team@example.com"
expires = {today + timedelta(days=90)}

[[waiver]]
rule = "{RULE}"
resource = "database/delta"
reason = "delta was to be locked down last month"
owner = "delta-team@example.com"
created = {today - timedelta(days=60)}
expires = {today - timedelta(days=5)}
""",
    )
    history = workspace.path / "history.sqlite"

    def audit(n: int, *extra: str) -> tuple[int, dict[str, Any]]:
        run = workspace.pgwarden(
            "scan",
            "--rules",
            RULE,
            "--waivers",
            "waivers.toml",
            "--history",
            str(history),
            "--json",
            f"run{n}.json",
            "--html",
            f"run{n}.html",
            "--sarif",
            f"run{n}.sarif",
            "-q",
            *extra,
        )
        results = workspace.json(f"run{n}.json")
        jsonschema.Draft202012Validator(shipped_results_schema()).validate(results)
        return run.exit_code, results

    # -- run 1: alpha and delta fail, charlie is waived ---------------------------------
    code, one = audit(1)
    assert code == 1
    found = findings_by_resource(one, RULE)
    assert {r: f["status"] for r, f in found.items()} == {
        "database/alpha": "fail",
        "database/charlie": "waived",
        "database/delta": "fail",
    }
    assert {f["first_seen"] for f in found.values()} == {one["scan"]["started_at"]}
    assert {f["age_days"] for f in found.values()} == {0}
    assert one["history"]["run_id"] == 1
    assert one["history"]["servers"] == [{"server": "shared-db", "new": [], "resolved": []}]
    assert [n["waiver"]["resource"] for n in one["waivers"]["expired"]] == ["database/delta"]
    made = workspace.pgwarden("baseline", "create", "run1.json", "-o", "baseline.json")
    assert made.exit_code == 0, made.output

    # -- run 2, ten days later: alpha fixed, bravo opened ----------------------------------
    _shift_history(history, 10)
    workspace.sql(
        "REVOKE CONNECT, TEMPORARY ON DATABASE alpha FROM PUBLIC",
        "GRANT CONNECT ON DATABASE bravo TO PUBLIC",
    )
    code, two = audit(2, "--baseline", "baseline.json")
    assert code == 1  # bravo is new
    found = findings_by_resource(two, RULE)
    assert {r: (f["status"], f["baseline_state"]) for r, f in found.items()} == {
        "database/alpha": ("fail", "absent"),
        "database/bravo": ("fail", "new"),
        "database/charlie": ("waived", "new"),
        "database/delta": ("fail", "unchanged"),
    }
    assert {r: f.get("age_days") for r, f in found.items()} == {
        "database/alpha": None,
        "database/bravo": 0,
        "database/charlie": 10,
        "database/delta": 10,
    }
    first_run_started = (
        datetime.fromisoformat(one["scan"]["started_at"]) - timedelta(days=10)
    ).astimezone(UTC)
    assert datetime.fromisoformat(found["database/delta"]["first_seen"]) == first_run_started
    server = two["history"]["servers"][0]
    assert server["previous_run"] == 1
    assert server["new"] == [found["database/bravo"]["fingerprint"]]
    assert [r["resource"] for r in server["resolved"]] == ["database/alpha"]
    assert datetime.fromisoformat(server["resolved"][0]["first_seen"]) == first_run_started
    assert (two["history"]["new"], two["history"]["resolved"]) == (1, 1)
    assert two["summary"]["fail"] == 2  # bravo and delta; absent alpha is not counted

    html = _html_findings(workspace.path / "run2.html")
    assert {r: f["baseline_state"] for r, f in html.items()} == {
        "database/alpha": "absent",
        "database/bravo": "new",
        "database/charlie": "new",
        "database/delta": "unchanged",
    }
    assert html["database/delta"]["first_seen"] == _utc_text(found["database/delta"]["first_seen"])
    assert html["database/charlie"]["waiver"][0] == "charlie moves to its own server next quarter"
    assert html["database/delta"]["waiver"] is None

    # SARIF leaves the absent entry out: GitHub ignores baselineState and would keep an
    # "absent" result open as an alert; without it the alert closes.
    sarif = _sarif_results(workspace.path / "run2.sarif")
    assert {r: s["baselineState"] for r, s in sarif.items()} == {
        "database/bravo": "new",
        "database/charlie": "new",
        "database/delta": "unchanged",
    }
    assert [s.get("suppressions") for s in sarif.values() if "suppressions" in s] == [
        [
            {
                "kind": "external",
                "status": "accepted",
                "justification": sarif["database/charlie"]["suppressions"][0]["justification"],
            }
        ]
    ]
    assert (
        "charlie moves to its own server next quarter"
        in (sarif["database/charlie"]["suppressions"][0]["justification"])
    )
    assert "suppressions" not in sarif["database/delta"]  # its waiver expired

    # A saved results document with waivers, baseline and history re-renders.
    rendered = workspace.pgwarden("report", "run2.json", "--markdown", "-")
    assert rendered.exit_code == 0, rendered.output
    assert "database/bravo" in rendered.stdout

    # -- run 3, three days later: bravo closed again ------------------------------------
    _shift_history(history, 3)
    workspace.sql("REVOKE CONNECT, TEMPORARY ON DATABASE bravo FROM PUBLIC")
    code, three = audit(3, "--baseline", "baseline.json")
    assert code == 0  # delta still fails, but the baseline accepted it
    found = findings_by_resource(three, RULE)
    assert {r: (f["status"], f["baseline_state"], f.get("age_days")) for r, f in found.items()} == {
        "database/alpha": ("fail", "absent", None),
        "database/charlie": ("waived", "new", 13),
        "database/delta": ("fail", "unchanged", 13),
    }
    server = three["history"]["servers"][0]
    assert server["previous_run"] == 2
    assert server["new"] == []
    assert [r["resource"] for r in server["resolved"]] == ["database/bravo"]
    sarif = _sarif_results(workspace.path / "run3.sarif")
    assert sarif["database/charlie"]["suppressions"][0]["status"] == "accepted"
    assert sarif["database/delta"]["baselineState"] == "unchanged"

    # Without the baseline the expired waiver bites: delta fails the gate.
    no_baseline = workspace.pgwarden(
        "scan", "--rules", RULE, "--waivers", "waivers.toml", "--json", "-", "-q"
    )
    assert no_baseline.exit_code == 1
    assert json.loads(no_baseline.stdout)["waivers"]["expired"][0]["findings"] == [
        found["database/delta"]["fingerprint"]
    ]

    # -- the history, listed and compared ---------------------------------------------
    listed = workspace.pgwarden("history", "--history", str(history), "--json")
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)
    assert [(r["id"], r["new"], r["resolved"], r["fail"], r["waived"]) for r in runs] == [
        (3, 0, 1, 1, 1),
        (2, 1, 1, 2, 1),
        (1, 0, 0, 2, 1),
    ]
    assert all(r["servers"] == ["shared-db"] and r["complete"] for r in runs)
    assert runs[0]["config"] == "pgwarden.toml" and len(runs[0]["config_sha256"]) == 64

    table = workspace.pgwarden("history", "--history", str(history))
    assert table.exit_code == 0
    assert "pgwarden runs" in table.stdout and "shared-db" in table.stdout

    diff = workspace.pgwarden("diff", "1", "latest~1", "--history", str(history))
    assert diff.exit_code == 0, diff.output
    lines = diff.stdout.splitlines()
    assert lines[0].startswith("run 1 (") and " → run 2 (" in lines[0]
    assert lines[1] == "shared-db: 1 new, 1 resolved, 0 changed status"
    assert lines[2].startswith("  + high PGW-ISO-001 database/bravo PUBLIC: ")
    assert lines[3].startswith("  - high PGW-ISO-001 database/alpha PUBLIC: ")

    as_json = workspace.pgwarden("diff", "1", "latest", "--history", str(history), "--json")
    change = json.loads(as_json.stdout)
    assert (change["before"]["id"], change["after"]["id"]) == (1, 3)
    assert [f["resource"] for f in change["servers"][0]["resolved"]] == ["database/alpha"]
    assert change["servers"][0]["new"] == []


def test_html_shows_age_and_what_changed_since_the_previous_run(workspace: Workspace) -> None:
    """The HTML report states each finding's age and the run's new and resolved counts."""
    workspace.create_database("alpha", public_connect=True)
    workspace.create_database("bravo", public_connect=False)
    workspace.write("pgwarden.toml", config_text({"alpha": "alpha", "bravo": "bravo"}))
    history = workspace.path / "history.sqlite"
    scan = ("scan", "--rules", RULE, "--history", str(history), "-q")
    workspace.pgwarden(*scan)
    _shift_history(history, 7)
    workspace.sql("GRANT CONNECT ON DATABASE bravo TO PUBLIC")
    workspace.pgwarden(*scan, "--html", "report.html")
    text = html_lib.unescape((workspace.path / "report.html").read_text(encoding="utf-8"))
    visible = re.sub(r"<script.*?</script>", "", text, flags=re.S)
    assert re.search(r"\b1 new\b", visible), "the run's new violations are not shown"
    assert re.search(r"7 days?\b|7d\b", text), "alpha's age (7 days) is not shown"
