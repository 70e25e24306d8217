"""Baselines: accept today's findings, fail the gate on new ones only.

``pgwarden baseline create RESULTS.json -o baseline.json`` records the failing findings
of a results document by fingerprint. ``scan --baseline`` then marks every finding
``new`` or ``unchanged``, and keeps each baseline entry the scan no longer finds as a
finding with ``baseline_state: absent`` (the status, severity and message it had in the
baseline), so every report can show what was fixed. Only ``new`` failing findings fail
the gate; absent ones are never counted.

Waived findings are left out of a baseline on purpose: a waiver governs them, and its
expiry must still bite, which a baseline entry would silently prevent. Errors are left
out too: a rule that could not look found nothing to accept, so ``error`` findings get
no baseline state (they make the scan incomplete, exit 3, baseline or not). Pass
records (``--include-passed``) are neither accepted nor marked: they are evidence of
compliance, not findings.

An entry is only reported absent when its rule really ran on its server in this scan
(passed or failed): a rule in ``error``, skipped or not selected cannot vouch that the
problem is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from pgwarden import __version__
from pgwarden.engine import evaluated, with_findings
from pgwarden.model.config import Severity
from pgwarden.model.errors import ConfigError, read_input
from pgwarden.model.frozen import Frozen
from pgwarden.model.results import BaselineReport, Finding, Results, Status

BASELINE_VERSION: Literal["1.0"] = "1.0"


class BaselineEntry(Frozen):
    """One accepted finding, identified by its fingerprint (``Frozen``: a baseline of
    thousands of findings holds one set of the fields given, not one per entry)."""

    fingerprint: str = Field(min_length=1)
    rule_id: str
    severity: Severity
    status: Status = "fail"
    server: str
    app: str | None = None
    resource: str
    principal: str | None = None
    message: str


class Baseline(Frozen):
    """A baseline file."""

    pgwarden_baseline: Literal["1.0"] = BASELINE_VERSION
    tool_version: str = __version__
    created_at: datetime
    source: str | None = Field(default=None, description="the results file it was made from")
    scan_started_at: datetime | None = None
    findings: tuple[BaselineEntry, ...] = ()

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True) + "\n"


def create_baseline(results: Results, *, now: datetime, source: str | None = None) -> Baseline:
    """A baseline of the failing findings of a results document."""
    entries = {
        f.fingerprint: BaselineEntry(
            fingerprint=f.fingerprint,
            rule_id=f.rule_id,
            severity=f.severity,
            status=f.status,
            server=f.server,
            app=f.app,
            resource=f.resource,
            principal=f.principal,
            message=f.message,
        )
        for f in results.findings
        if f.status == "fail" and f.baseline_state != "absent"
    }
    return Baseline(
        created_at=now,
        source=source,
        scan_started_at=results.scan.started_at,
        findings=tuple(sorted(entries.values(), key=lambda e: (e.server, e.rule_id, e.resource))),
    )


def parse_baseline(text: str, path: str) -> Baseline:
    """Validate a baseline document; every problem is one ConfigError line."""
    try:
        # Parsed straight into the models: no dict of every entry held beside them.
        return Baseline.model_validate_json(text)
    except ValidationError:
        pass  # read again as plain JSON, to say what is wrong with it
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(data, dict) and "pgwarden_baseline" not in data and "schema_version" in data:
        raise ConfigError(
            f"{path}: this is a results document, not a baseline; make one with "
            f"'pgwarden baseline create {path} -o baseline.json'"
        )
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"]) or "(top level)"
        problem = {"missing": "required key is missing", "extra_forbidden": "unknown key"}.get(
            first["type"], str(first["msg"])
        )
        raise ConfigError(f"{path}: not a pgwarden baseline: {place}: {problem}") from None


@dataclass(frozen=True)
class BaselineFile:
    """A baseline and the path it was named by, which the results quote as ``baseline.file``."""

    path: str
    baseline: Baseline


def load_baseline(path: str) -> BaselineFile:
    """Read and validate the baseline file at ``path`` (kept as given, for the results)."""
    return BaselineFile(path=path, baseline=parse_baseline(read_input(Path(path)), str(Path(path))))


def _absent(entry: BaselineEntry) -> Finding:
    return Finding(
        rule_id=entry.rule_id,
        severity=entry.severity,
        status=entry.status,
        server=entry.server,
        app=entry.app,
        resource=entry.resource,
        principal=entry.principal,
        message=entry.message,
        fingerprint=entry.fingerprint,
        baseline_state="absent",
    )


def apply_baseline(results: Results, baseline: Baseline, *, path: str) -> Results:
    """Mark each finding new or unchanged and add the baseline entries now gone (absent)."""
    known = {entry.fingerprint for entry in baseline.findings}
    current = {f.fingerprint for f in results.findings if f.status != "pass"}
    findings = [
        f
        if f.status in ("error", "pass")
        else f.model_copy(
            update={"baseline_state": "unchanged" if f.fingerprint in known else "new"}
        )
        for f in results.findings
    ]
    ran = evaluated(results)
    absent = [
        _absent(entry)
        for entry in baseline.findings
        if entry.fingerprint not in current and (entry.rule_id, entry.server) in ran
    ]
    states = [f.baseline_state for f in findings]
    report = BaselineReport(
        file=path,
        created_at=baseline.created_at,
        new=states.count("new"),
        unchanged=states.count("unchanged"),
        absent=len(absent),
    )
    return with_findings(results, [*findings, *absent], baseline=report)
