"""The gate: Results to final Results and an exit code, the same for every caller.

``pgwarden scan``, ``pgwarden demo`` and library callers all go through
``apply_gate``, so the same findings and the same inputs give the same report and the
same exit code everywhere. The steps run in a fixed order, each optional:

1. waivers: owned, expiring exceptions turn failing findings ``waived``;
2. the baseline: what is left is marked ``new`` or ``unchanged``, and accepted
   findings the scan no longer finds come back as ``absent``;
3. the history: the run is recorded as the reports show it (waived findings stored as
   waived, absent ones not stored as seen), and findings get ``first_seen`` and age;
4. the exit decision (``exit_code``).

Pass records (``--include-passed``) take no part in any step: they are set aside
before the first and put back after the last, so no waiver matches one, no baseline
accepts one, the history stores none and none fails the gate.

Exit codes: 0 nothing at or above ``fail_on``; 1 a violation at or above it; 3 the
scan was incomplete (some rule in ``error``) and nothing else failed the gate. (2, a
usage or config error, is raised before there are results to gate.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date
from typing import TYPE_CHECKING

from pgwarden.engine import with_findings
from pgwarden.model.config import FailOn
from pgwarden.model.errors import EXIT_INCOMPLETE, EXIT_OK, EXIT_VIOLATIONS
from pgwarden.model.results import SEVERITY_ORDER, Results

if TYPE_CHECKING:
    # Each step's module is imported when a run takes that step: most scans take none.
    from pgwarden.gate.baseline import BaselineFile
    from pgwarden.gate.history.store import HistoryStore
    from pgwarden.gate.waivers import WaiverFile


@dataclass(frozen=True)
class GateOutcome:
    """What the gate made of a scan: the results to report, and the exit code."""

    results: Results
    exit_code: int


def apply_gate(
    results: Results,
    *,
    fail_on: FailOn,
    waivers: WaiverFile | None = None,
    baseline: BaselineFile | None = None,
    history: HistoryStore | None = None,
    today: date | None = None,
) -> GateOutcome:
    """Apply waivers, then the baseline, then record the history; decide the exit code.

    ``history`` is an open store; the caller opens it (before scanning, so a bad store
    stops the run before any server is touched) and closes it. Waivers are judged
    against ``today``, by default the UTC date the scan started.
    """
    passes = [f for f in results.findings if f.status == "pass"]
    if passes:
        results = with_findings(results, [f for f in results.findings if f.status != "pass"])
    if waivers is not None:
        from pgwarden.gate.waivers import apply_waivers

        day = scan_day(results) if today is None else today
        results = apply_waivers(results, waivers, today=day)
    if baseline is not None:
        from pgwarden.gate.baseline import apply_baseline

        results = apply_baseline(results, baseline.baseline, path=baseline.path)
    if history is not None:
        results = history.record(results)
    if passes:
        results = with_findings(results, [*results.findings, *passes])
    return GateOutcome(results=results, exit_code=exit_code(results, fail_on))


def scan_day(results: Results) -> date:
    """The UTC date the scan started: the day waivers are judged on."""
    started = results.scan.started_at
    # A naive time (a hand-written results document) is taken as written.
    return started.astimezone(UTC).date() if started.tzinfo is not None else started.date()


def exit_code(results: Results, fail_on: FailOn) -> int:
    """The exit code: 1 on a failing finding at or above ``fail_on``, 3 when incomplete.

    A violation outranks incompleteness: 1 even when some rule is in ``error``. Waived
    findings never fail the gate; with a baseline, only ``new`` findings do
    (``unchanged`` ones were accepted, ``absent`` ones are gone). ``none`` fails on
    nothing, but an incomplete scan is still 3.
    """
    threshold = SEVERITY_ORDER.get(fail_on)
    if threshold is not None:
        for finding in results.findings:
            if finding.status != "fail" or finding.baseline_state in ("unchanged", "absent"):
                continue
            if SEVERITY_ORDER[finding.severity] >= threshold:
                return EXIT_VIOLATIONS
    if not results.scan.complete:
        return EXIT_INCOMPLETE
    return EXIT_OK
