"""The Results document: one versioned JSON every report format is rendered from.

``schema_version`` is MAJOR.MINOR: the major part changes when a field changes
meaning or disappears, the minor part when fields or values are added (readers of an
older minor version keep working: what they know means what it meant). 1.1 added the
rules' ``controls``, the ``compliance`` section and ``pass`` records (findings with
status ``pass``, only with ``--include-passed``). The JSON Schema shipped in
``pgwarden/schemas`` is generated from these models (a test keeps the two in sync);
the 1.0 schema ships too, unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from importlib import resources
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pgwarden.model.config import Severity
from pgwarden.model.errors import ConfigError
from pgwarden.model.evidence import MAX_LISTED, MAX_MESSAGE_CHARS, MORE_SUFFIX, TOTAL_SUFFIX
from pgwarden.model.frozen import Frozen

SEVERITY_ORDER: dict[str, int] = {"critical": 4, "high": 3, "medium": 2, "low": 1}
# ``pass``: a rule and resource checked and found compliant (only with --include-passed).
Status = Literal["fail", "error", "waived", "pass"]
SCHEMA_VERSION: Literal["1.1"] = "1.1"
ComplianceStatus = Literal["pass", "fail", "error", "not_applicable", "manual"]
BaselineState = Literal["new", "unchanged", "absent"]


class _Doc(Frozen):
    """A part of the results document: immutable, strict about unknown fields, and lean
    (``Frozen`` shares the set of fields each instance was given: a big scan makes tens
    of thousands of findings)."""


class Tool(_Doc):
    name: Literal["pgwarden"] = "pgwarden"
    version: str


class MergeInfo(_Doc):
    """What ``pgwarden merge`` joined: how many parts, of how many shards, which are missing."""

    parts: int
    shards: int | None = Field(default=None, description="N of the parts' --shard I/N")
    missing: tuple[int, ...] = Field(
        default=(), description="shards (I of I/N) no part covered: their servers are absent"
    )


class ScanInfo(_Doc):
    started_at: datetime
    finished_at: datetime
    complete: bool
    config: str | None = None
    config_sha256: str | None = Field(
        default=None, description="SHA-256 of the config file's bytes, for audit trails"
    )
    locations: dict[str, int] = Field(
        default_factory=dict,
        description="line of each [[server]] and [[server.app]] block, keyed 'server/NAME' and "
        "'app/SERVER/APP'",
    )
    snapshot: str | None = Field(
        default=None, description="the snapshot file, when scanned offline"
    )
    shard: str | None = Field(
        default=None,
        pattern=r"^[0-9]+/[0-9]+$",
        description="the shard 'I/N' (I from 0) this part scanned, with --shard",
    )
    merged: MergeInfo | None = Field(
        default=None, description="the parts this document joins (pgwarden merge)"
    )


class AccessCell(_Doc):
    """One (principal, database) pair of the access matrix."""

    database: str
    app: str | None = None
    principal: str = Field(description="an app name, 'PUBLIC', or role/NAME")
    via: Literal["own", "public", "grant", "membership"]
    violation: bool = False


class EntraRole(_Doc):
    """A Microsoft Entra principal that is a PostgreSQL role (its ``pgaadauth`` label)."""

    role: str
    kind: str = Field(description="user (a person), group, service (a workload), or unknown")
    object_id: str | None = None
    app: str | None = Field(
        default=None, description="the app it belongs to: one of its roles, or identities"
    )
    login: bool = True


class ServerSummary(_Doc):
    name: str
    version: str | None = None
    host: str | None = None
    port: int | None = None
    connected_as: str | None = None
    databases: int | None = None
    roles: int | None = None
    complete: bool = True
    errors: tuple[str, ...] = ()
    access: tuple[AccessCell, ...] = Field(
        default=(), description="who can reach which database and how (for the access matrix)"
    )
    entra_roles: tuple[EntraRole, ...] | None = Field(
        default=None,
        description="the roles that are Microsoft Entra principals, by name; absent when "
        "there are none (schema 1.1)",
    )
    sections: tuple[str, ...] | None = Field(
        default=None, description="the snapshot sections collected on this server (schema 1.1)"
    )


class Waiver(_Doc):
    """A waiver from the ``--waivers`` file, as a finding or the run report carries it."""

    reason: str
    owner: str
    expires: date
    rule: str | None = None
    resource: str | None = None
    server: str | None = None
    app: str | None = None
    principal: str | None = None
    created: date | None = None
    source: str | None = Field(
        default=None, description="where the waiver is written: 'FILE:LINE' of its [[waiver]]"
    )


class Finding(_Doc):
    """One finding. With ``--baseline``, a baseline entry the scan no longer finds is kept
    as a finding with ``baseline_state: absent`` and the status it had in the baseline;
    absent findings are never counted in the summary and never fail the gate."""

    rule_id: str
    severity: Severity
    status: Status
    server: str
    app: str | None = None
    resource: str
    principal: str | None = None
    message: str = Field(
        description=f"what is wrong, naming the first few of anything; at most "
        f"{MAX_MESSAGE_CHARS} characters"
    )
    evidence: dict[str, Any] = Field(
        default_factory=dict,
        description=f"what the rule saw, bounded whatever the size of the server: a list "
        f"(or object) in it holds at most {MAX_LISTED} items, sorted or most important "
        f"first; when one is cut, '<key>{TOTAL_SUFFIX}' gives how many there are in all and "
        f"'<key>{MORE_SUFFIX}', where known, a SQL query or command that lists them all. "
        "Membership paths are shown up to five per access, fewer when they are long (at "
        "most 40 role names together; the rest counted in 'paths_total'), a path of more "
        f"than {MAX_LISTED} roles by its first and last "
        f"{MAX_LISTED // 2} ('path_total' giving its length); one direct, inherited "
        "membership is the access's role and grantee, not repeated as a path. A finding is "
        "a few kilobytes at most.",
    )
    remediation: str | None = Field(
        default=None,
        description="SQL or steps that fix the finding; a script of many similar statements "
        f"shows the first {MAX_LISTED} and a comment saying what the rest do",
    )
    fingerprint: str
    waiver: Waiver | None = None
    baseline_state: BaselineState | None = None
    first_seen: datetime | None = None
    age_days: int | None = Field(
        default=None,
        ge=0,
        description="whole days from first_seen to this scan's start (only with --history)",
    )


class MappedControl(_Doc):
    """A framework control a rule checks."""

    framework: str = Field(description="the framework's id, like cis-postgresql-16-1.0.0")
    id: str = Field(description="the control's id in that framework, like 4.2")
    title: str
    resources: tuple[str, ...] | None = Field(
        default=None,
        description="globs of the resources whose findings concern the control (all when absent)",
    )
    sections: tuple[str, ...] | None = Field(
        default=None,
        description="snapshot sections the rule must have read on a server to judge the control",
    )


class RuleInfo(_Doc):
    """A rule's metadata, carried in the results so every renderer works from them alone."""

    id: str
    title: str
    severity: Severity
    family: str
    frameworks: tuple[str, ...] = Field(
        default=(), description="the frameworks and controls the rule maps to, as text"
    )
    controls: tuple[MappedControl, ...] | None = None
    description: str
    remediation: str = ""
    help_uri: str | None = None
    source: str = "built-in"


class Coverage(_Doc):
    """Whether a rule ran on a server: ``passed``, ``failed``, ``error`` or ``skipped``."""

    rule_id: str
    server: str
    outcome: Literal["passed", "failed", "error", "skipped"]
    reason: str | None = None


class Summary(_Doc):
    fail: int = 0
    pass_: int = Field(default=0, alias="pass")
    error: int = 0
    waived: int = 0
    by_severity: dict[str, int] = Field(default_factory=dict)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class WaiverNote(_Doc):
    """A waiver this run did not apply: expired, or stale (it matches nothing)."""

    waiver: Waiver
    findings: tuple[str, ...] = Field(
        default=(),
        description="fingerprints of the failing findings an expired waiver would match",
    )


class WaiverReport(_Doc):
    """What the ``--waivers`` file did in this run."""

    file: str
    applied: int = Field(default=0, description="findings waived")
    expired: tuple[WaiverNote, ...] = ()
    stale: tuple[WaiverNote, ...] = ()


class BaselineReport(_Doc):
    """How this run compares with the ``--baseline`` file."""

    file: str
    created_at: datetime
    new: int = 0
    unchanged: int = 0
    absent: int = 0


class ResolvedFinding(_Doc):
    """A violation of the previous run of a server that this run no longer finds."""

    fingerprint: str
    rule_id: str
    severity: Severity
    status: Status
    server: str
    app: str | None = None
    resource: str
    principal: str | None = None
    message: str
    first_seen: datetime | None = None


class ServerHistory(_Doc):
    """One server's change since its previous recorded run."""

    server: str
    previous_run: int | None = None
    previous_started_at: datetime | None = None
    new: tuple[str, ...] = Field(default=(), description="fingerprints of new violations")
    resolved: tuple[ResolvedFinding, ...] = ()


class HistoryReport(_Doc):
    """Where this run was recorded (``--history``) and what changed since the last one."""

    store: str = Field(description="the history database (a DSN is shown without password)")
    run_id: int
    new: int = 0
    resolved: int = 0
    servers: tuple[ServerHistory, ...] = ()


class ComplianceCounts(_Doc):
    """The findings of a control's rules in scope, by status."""

    fail: int = 0
    error: int = 0
    waived: int = 0
    pass_: int = Field(default=0, alias="pass", description="pass records (--include-passed)")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ComplianceControl(_Doc):
    """One control of a framework and what the scan says about it.

    ``pass``: every rule behind it ran on every server and found nothing; ``fail``:
    one found a violation (waived ones included: an accepted risk is not compliance);
    ``error``: one could not see what it needs; ``manual``: pgwarden cannot decide it
    (``reason`` says what a person must check); ``not_applicable``: it cannot apply to
    a managed server (``reason`` says why).
    """

    id: str
    title: str
    status: ComplianceStatus
    rules: tuple[str, ...] = ()
    findings: ComplianceCounts = Field(default_factory=ComplianceCounts)
    reason: str | None = None
    note: str | None = None


# A framework's control statuses as a table heads them, in the order the terminal's
# compliance table shows them (``ComplianceSummary.by_status``).
SUMMARY_STATUSES = ("pass", "fail", "error", "manual", "not applicable")


class ComplianceSummary(_Doc):
    """How many of a framework's controls have each status."""

    pass_: int = Field(default=0, alias="pass")
    fail: int = 0
    error: int = 0
    not_applicable: int = 0
    manual: int = 0

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def by_status(self) -> tuple[tuple[str, int], ...]:
        """Each status of ``SUMMARY_STATUSES`` and how many controls have it."""
        counts = (self.pass_, self.fail, self.error, self.manual, self.not_applicable)
        return tuple(zip(SUMMARY_STATUSES, counts, strict=True))


class ComplianceFramework(_Doc):
    """One framework's controls as this scan judged them."""

    id: str
    name: str
    version: str
    short_name: str | None = Field(default=None, description="how reports name it in a line")
    url: str | None = None
    summary: ComplianceSummary = Field(default_factory=ComplianceSummary)
    controls: tuple[ComplianceControl, ...] = ()


class Results(_Doc):
    schema_version: Literal["1.0", "1.1"] = SCHEMA_VERSION
    tool: Tool
    scan: ScanInfo
    servers: tuple[ServerSummary, ...] = ()
    findings: tuple[Finding, ...] = ()
    summary: Summary = Field(default_factory=Summary)
    rules: tuple[RuleInfo, ...] = ()
    coverage: tuple[Coverage, ...] = ()
    waivers: WaiverReport | None = None
    baseline: BaselineReport | None = None
    history: HistoryReport | None = None
    compliance: tuple[ComplianceFramework, ...] | None = Field(
        default=None, description="per framework, each control's status (schema 1.1)"
    )

    def to_json(self) -> str:
        """The document as ``--json`` writes it (``results_json``)."""
        return results_json(self).decode("utf-8")


# Where the findings go in the document, at two spaces of indent: no string can hold
# a raw line break, and nested keys are indented further, so this is found only once.
_NO_FINDINGS = b'\n  "findings": []'


def results_json(results: Results) -> bytes:
    """The results as ``--json`` writes them (``results_json_chunks``), in one piece."""
    document = io.BytesIO()
    for chunk in results_json_chunks(results):
        document.write(chunk)
    # getvalue hands over the buffer without copying it.
    return document.getvalue()


def results_json_chunks(results: Results) -> Iterator[bytes]:
    """The results as ``--json`` writes them, a finding at a time: UTF-8 JSON,
    pretty-printed but for the findings, which are one compact line each.

    Indented, a finding's nested evidence took as much whitespace as content (a results
    file of 16,000 findings over 30 MB); a line per finding is the smallest readable
    form, and the one ``grep`` and ``wc -l`` work with. A finding at a time, so a
    caller writing a file never holds the whole document: the findings are most of it.
    """
    if not results.findings:
        yield _serialised(results) + b"\n"
        return
    head, tail = _serialised(results.model_copy(update={"findings": ()})).split(_NO_FINDINGS)
    yield head + b'\n  "findings": ['
    for index, finding in enumerate(results.findings):
        yield (b",\n    " if index else b"\n    ") + pydantic_core.to_json(
            finding, by_alias=True, exclude_none=True
        )
    yield b"\n  ]" + tail + b"\n"


def _serialised(model: BaseModel) -> bytes:
    return pydantic_core.to_json(model, indent=2, by_alias=True, exclude_none=True)


def fingerprint(rule_id: str, server: str, resource: str, principal: str | None) -> str:
    """Stable identity of a finding across runs."""
    key = "\x1f".join((rule_id, server, resource, principal or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def load_results(text: str, where: str) -> Results:
    """Parse a saved results document; a bad one is one ConfigError line."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"{where}: not valid JSON: {exc}") from None
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"]) or "(top level)"
        if isinstance(data, dict) and "collected_at" in data and "findings" not in data:
            raise ConfigError(
                f"{where}: a snapshot, not a results document: evaluate it with "
                "'pgwarden scan --snapshot'"
            ) from None
        raise ConfigError(f"{where}: {place}: {first['msg']}") from None


def results_json_schema() -> dict[str, Any]:
    """The JSON Schema generated from the models (the shipped file must equal it)."""
    schema = Results.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    # An identifier, not an address: nothing to fetch, no domain to lapse.
    schema["$id"] = f"urn:pgwarden:schema:results-{SCHEMA_VERSION}"
    return schema


def shipped_results_schema(version: str = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema file that ships inside the package (by default, the current one)."""
    name = f"schemas/results-{version}.json"
    text = resources.files("pgwarden").joinpath(name).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
