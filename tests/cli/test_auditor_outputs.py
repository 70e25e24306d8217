"""What an auditor takes away, end to end on the demo server: ``pgwarden scan
--include-passed --json --csv --html --evidence-bundle``, then ``pgwarden verify``."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pgwarden.cli.demo import AUDITOR, DEMO_CONFIG, DEMO_DSN_VARIABLE, SeedServer, app_sessions
from pgwarden.model.results import shipped_results_schema
from pgwarden.model.snapshot import Snapshot
from tests.cli import run_pgwarden
from tests.evidence import rewrite_entry

FAST = DEMO_CONFIG.replace(
    "[policy]\n", "[policy]\nsession_samples = 2\nsession_window_seconds = 0.2\n", 1
)
OUTPUTS = ("--json", "r.json", "--csv", "r.csv", "--html", "r.html", "--evidence-bundle", "b.zip")


@pytest.fixture(scope="module")
def audited(
    seed_server: SeedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Any], str]]:
    """The seed server scanned once with every auditor output, signed."""
    work = tmp_path_factory.mktemp("audit")
    (work / "pgwarden.toml").write_text(FAST)
    key = Ed25519PrivateKey.generate()
    (work / "signing.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (work / "public.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    dsn = seed_server.dsn(AUDITOR)
    with app_sessions(seed_server):
        run = run_pgwarden(
            "scan",
            "--include-passed",
            *OUTPUTS,
            "--signing-key",
            "signing.pem",
            "-q",
            cwd=work,
            env={DEMO_DSN_VARIABLE: dsn},
        )
    assert run.returncode == 1, run.stderr  # the seed server has violations
    results = json.loads((work / "r.json").read_text("utf-8"))
    yield work, results, dsn


def _control(results: dict[str, Any], framework: str, control: str) -> dict[str, Any]:
    chosen = next(f for f in results["compliance"] if f["id"] == framework)
    found: dict[str, Any] = next(c for c in chosen["controls"] if c["id"] == control)
    return found


def _outcome(results: dict[str, Any], rule: str) -> str:
    outcome: str = next(c["outcome"] for c in results["coverage"] if c["rule_id"] == rule)
    return outcome


def test_results_are_valid_and_carry_compliance(audited: tuple[Path, dict[str, Any], str]) -> None:
    _work, results, _dsn = audited
    jsonschema.Draft202012Validator(shipped_results_schema()).validate(results)
    assert results["schema_version"] == "1.1"
    ids = [f["id"] for f in results["compliance"]]
    assert ids == [
        "cis-azure-3.0.0",
        "cis-postgresql-16-1.0.0",
        "cis-postgresql-17-1.0.0",
        "azure-policy-postgresql",
        "nist-800-53-r5",
    ]


def test_control_statuses_follow_from_the_findings(
    audited: tuple[Path, dict[str, Any], str],
) -> None:
    _work, results, _dsn = audited
    # PUBLIC can connect to three app databases: every control behind ISO-001 fails.
    assert _outcome(results, "PGW-ISO-001") == "failed"
    for framework, control in (("nist-800-53-r5", "AC-3"), ("nist-800-53-r5", "AC-6")):
        judged = _control(results, framework, control)
        assert judged["status"] == "fail"
        assert "PGW-ISO-001" in judged["rules"] and judged["findings"]["fail"] > 0
    # Every database belongs to an app and every mapped name exists: CM-8's rules are clean.
    assert _outcome(results, "PGW-MAP-001") == _outcome(results, "PGW-MAP-002") == "passed"
    inventory = _control(results, "nist-800-53-r5", "CM-8")
    assert inventory["status"] == "pass" and inventory["findings"]["pass"] > 0
    # No Azure reference: the Azure-only rules are skipped, and the rules that fall back to
    # pg_settings do not judge Azure controls; those controls need a person.
    assert "skipped" in _control(results, "cis-azure-3.0.0", "5.2.5")["reason"]
    checkpoints = _control(results, "cis-azure-3.0.0", "5.2.2")
    assert checkpoints["status"] == "manual"
    assert "azure.configurations not collected" in checkpoints["reason"]
    # Host-level items of the CIS PostgreSQL benchmark cannot apply to a managed server.
    assert _control(results, "cis-postgresql-16-1.0.0", "1.1")["status"] == "not_applicable"
    # Every status in the section is one of the five, and pass only with clean rules.
    for framework in results["compliance"]:
        for control in framework["controls"]:
            assert control["status"] in {"pass", "fail", "error", "manual", "not_applicable"}
            if control["status"] == "pass":
                assert control["rules"]
                assert all(_outcome(results, r) == "passed" for r in control["rules"])


def test_pass_records_show_the_compliant_state(audited: tuple[Path, dict[str, Any], str]) -> None:
    _work, results, _dsn = audited
    passes = [f for f in results["findings"] if f["status"] == "pass"]
    assert passes
    fails = {(f["rule_id"], f["resource"]) for f in results["findings"] if f["status"] == "fail"}
    assert not {(p["rule_id"], p["resource"]) for p in passes} & fails
    # A database PUBLIC cannot connect to: its ACL is the evidence.
    public_ok = {p["resource"]: p for p in passes if p["rule_id"] == "PGW-ISO-001"}
    assert "database/ctxEco" in public_ok
    evidence = public_ok["database/ctxEco"]["evidence"]
    assert evidence["datacl"] and not any(item.startswith("=") for item in evidence["datacl"])
    # The setting judged, with its value and where it was read.
    floor = next(p for p in passes if p["resource"] == "setting/ssl_min_protocol_version")
    assert floor["rule_id"] == "PGW-TLS-001"
    assert floor["evidence"]["value"] == "TLSv1.2" and floor["evidence"]["source"] == "pg_settings"
    assert {p["rule_id"] for p in passes} >= {"PGW-ISO-002", "PGW-ROLE-002", "PGW-MAP-001"}
    # Pass records are not counted as failures and did not fail the gate on their own.
    assert results["summary"]["fail"] == sum(f["status"] == "fail" for f in results["findings"])


def test_csv_reads_back_row_for_row(audited: tuple[Path, dict[str, Any], str]) -> None:
    work, results, _dsn = audited
    raw = (work / "r.csv").read_bytes()
    assert b"\r\n" in raw and not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["status", "severity", "rule_id"]
    assert len(body) == len(results["findings"])
    column = header.index("fingerprint")
    assert [row[column] for row in body] == [f["fingerprint"] for f in results["findings"]]
    assert {row[0] for row in body} >= {"fail", "pass"}


def test_the_html_report_has_the_compliance_view(
    audited: tuple[Path, dict[str, Any], str],
) -> None:
    work, _results, _dsn = audited
    html = (work / "r.html").read_text("utf-8")
    assert '<section id="compliance">' in html
    assert 'data-framework="nist-800-53-r5"' in html


def test_the_bundle_verifies_and_holds_no_secret(
    audited: tuple[Path, dict[str, Any], str],
) -> None:
    work, results, dsn = audited
    run = run_pgwarden("verify", "b.zip", "--public-key", "public.pem", cwd=work)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "signature: valid" in run.stdout
    with zipfile.ZipFile(work / "b.zip") as archive:
        names = archive.namelist()
        contents = {name: archive.read(name) for name in names}
    assert names[:2] == ["manifest.json", "manifest.json.sig"]
    assert {
        "results.json",
        "snapshot.json",
        "reports/report.html",
        "reports/results.csv",
        "config/pgwarden.toml",
        "config/effective.json",
    } <= set(names)
    manifest = json.loads(contents["manifest.json"])
    assert manifest["servers"][0]["postgres_role"] == AUDITOR
    assert manifest["scan"]["started_at"].startswith(results["scan"]["started_at"][:19])
    assert json.loads(contents["results.json"]) == results
    # The snapshot, written a database at a time, is the snapshot the scan evaluated.
    snapshot = Snapshot.model_validate_json(contents["snapshot.json"])
    assert snapshot.to_json_bytes() == contents["snapshot.json"]
    assert [s.name for s in snapshot.servers] == [s["name"] for s in results["servers"]]
    password = dsn.split("password=")[1].split()[0]
    assert not any(password.encode() in data for data in contents.values())


def test_one_changed_byte_is_caught(audited: tuple[Path, dict[str, Any], str]) -> None:
    work, _results, _dsn = audited
    original = (work / "b.zip").read_bytes()
    # A byte of one file's content changed, the archive otherwise consistent.
    rewrite_entry(work / "b.zip", work / "edited.zip", "reports/results.csv", flip=0)
    run = run_pgwarden("verify", "edited.zip", cwd=work)
    assert run.returncode == 1
    assert "reports/results.csv: altered" in run.stdout
    # A byte of the archive itself changed.
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    (work / "damaged.zip").write_bytes(bytes(damaged))
    assert run_pgwarden("verify", "damaged.zip", cwd=work).returncode == 1
    assert run_pgwarden("verify", "b.zip", cwd=work).returncode == 0
