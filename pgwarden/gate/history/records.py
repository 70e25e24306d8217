"""What a run history holds: recorded findings and runs, and the change between two runs.

A violation is a ``fail`` or ``waived`` finding; comparisons only trust rules that
really ran on both sides (see ``compare_server``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pgwarden.model.config import Severity
from pgwarden.model.results import Finding, Status

VIOLATION: frozenset[str] = frozenset({"fail", "waived"})


@dataclass(frozen=True)
class StoredFinding:
    """A finding as a run recorded it."""

    fingerprint: str
    rule_id: str
    severity: Severity
    status: Status
    server: str
    app: str | None
    resource: str
    principal: str | None
    message: str

    @classmethod
    def of(cls, finding: Finding) -> StoredFinding:
        return cls(
            fingerprint=finding.fingerprint,
            rule_id=finding.rule_id,
            severity=finding.severity,
            status=finding.status,
            server=finding.server,
            app=finding.app,
            resource=finding.resource,
            principal=finding.principal,
            message=finding.message,
        )


@dataclass(frozen=True)
class RunRecord:
    """One recorded scan."""

    id: int
    started_at: datetime
    finished_at: datetime
    tool_version: str
    config: str | None
    config_sha256: str | None
    snapshot: str | None
    complete: bool
    fail: int
    error: int
    waived: int
    new: int | None
    resolved: int | None
    servers: tuple[str, ...]


@dataclass(frozen=True)
class ServerChange:
    """What changed on one server between two runs."""

    server: str
    new: tuple[StoredFinding, ...] = ()
    resolved: tuple[StoredFinding, ...] = ()
    changed: tuple[tuple[StoredFinding, StoredFinding], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.new or self.resolved or self.changed)


@dataclass(frozen=True)
class RunDiff:
    """The change from one recorded run to another (``pgwarden diff``)."""

    before: RunRecord
    after: RunRecord
    servers: tuple[ServerChange, ...]
    only_before: tuple[str, ...]
    only_after: tuple[str, ...]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run as ``pgwarden history --json`` prints it."""
    result: dict[str, Any] = _plain(asdict(run))
    return result


def diff_json(diff: RunDiff) -> dict[str, Any]:
    """A diff as ``pgwarden diff --json`` prints it."""
    return {
        "before": run_json(diff.before),
        "after": run_json(diff.after),
        "servers": [
            {
                "server": change.server,
                "new": [asdict(f) for f in change.new],
                "resolved": [asdict(f) for f in change.resolved],
                "changed": [
                    {**asdict(after), "previous_status": before.status}
                    for before, after in change.changed
                ],
            }
            for change in diff.servers
        ],
        "only_before": list(diff.only_before),
        "only_after": list(diff.only_after),
    }


def compare_server(
    server: str,
    before: Iterable[StoredFinding],
    after: Iterable[StoredFinding],
    *,
    before_ran: set[str],
    after_ran: set[str],
) -> ServerChange:
    """New, resolved and re-statused violations of one server between two runs.

    ``before_ran``/``after_ran`` are the rule ids that really ran on the server in each
    run; a violation counts as new (or resolved) only when its rule ran on both sides.
    """
    old = {f.fingerprint: f for f in before if f.status in VIOLATION}
    now = {f.fingerprint: f for f in after if f.status in VIOLATION}
    key = _order
    return ServerChange(
        server=server,
        new=tuple(
            sorted(
                (f for fp, f in now.items() if fp not in old and f.rule_id in before_ran), key=key
            )
        ),
        resolved=tuple(
            sorted(
                (f for fp, f in old.items() if fp not in now and f.rule_id in after_ran), key=key
            )
        ),
        changed=tuple(
            (old[fp], f)
            for fp, f in sorted(now.items(), key=lambda item: key(item[1]))
            if fp in old and old[fp].status != f.status
        ),
    )


def _order(finding: StoredFinding) -> tuple[str, str, str]:
    return (finding.rule_id, finding.resource, finding.principal or "")
