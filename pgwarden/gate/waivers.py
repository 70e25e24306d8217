"""Waivers (``--waivers FILE``): time-limited, owned exceptions to the gate.

A waiver names a rule (id or glob), a resource (glob) and optionally a server, app and
principal (globs), with a required reason, owner and ``expires`` date. A failing
finding it matches becomes ``waived`` and carries the waiver; ``error`` findings are
never waived (a rule that could not look has nothing to forgive). Past its ``expires``
date a waiver no longer applies: the findings fail again and the run lists it as
expired. An unexpired waiver that matches nothing the run evaluated is listed as stale.

A file that cannot be trusted stops the run (exit 2) with one line naming the file,
the waiver and the problem: a missing reason, a quoted or timed ``expires``, or a
waiver that was already expired when it was written (``created`` on or after
``expires``).
"""

from __future__ import annotations

import fnmatch
import heapq
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pgwarden.engine import evaluated, with_findings
from pgwarden.model.errors import TOML_LIMIT_BYTES, ConfigError, read_input
from pgwarden.model.results import Finding, Results, Waiver, WaiverNote, WaiverReport

_RULE_GLOB = re.compile(r"^[A-Za-z0-9*?\[\]!-]+$")
_WAIVER_HEADER = re.compile(r"^\s*\[\[\s*waiver\s*\]\]")


def _toml_date(value: object) -> object:
    # tomllib gives a datetime (a date subclass) for 2027-03-31T00:00:00 and a str for
    # "2027-03-31"; only a bare TOML date says "through the end of that day".
    if type(value) is not date:
        raise ValueError("must be a TOML date like 2027-03-31 (unquoted, no time)")
    return value


TomlDate = Annotated[date, BeforeValidator(_toml_date)]


def _required_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


class WaiverEntry(BaseModel):
    """One ``[[waiver]]`` table of the waivers file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field(description="rule id or glob, like PGW-ISO-001 or PGW-ISO-*")
    resource: str = Field(description="TYPE/NAME glob, like database/zep or table/zep.*")
    server: str | None = None
    app: str | None = None
    principal: str | None = None
    reason: str
    owner: str
    expires: TomlDate
    created: TomlDate | None = None

    @field_validator("rule")
    @classmethod
    def _rule(cls, value: str) -> str:
        if not _RULE_GLOB.match(value):
            raise ValueError(f"{value!r} is not a rule id or glob (like PGW-ISO-001 or PGW-ISO-*)")
        return value.upper()

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        if value != "*" and "/" not in value:
            raise ValueError(f"{value!r} is not TYPE/NAME (like database/zep; globs allowed)")
        return value

    @field_validator("reason", "owner")
    @classmethod
    def _text(cls, value: str) -> str:
        return _required_text(value)

    @model_validator(mode="after")
    def _not_born_expired(self) -> WaiverEntry:
        if self.created is not None and self.created >= self.expires:
            raise ValueError(
                f"expires {self.expires.isoformat()} is not after created "
                f"{self.created.isoformat()}: the waiver was expired when it was written"
            )
        return self

    def matches(self, finding: Finding) -> bool:
        """Whether this waiver covers the finding (only failing findings can be waived)."""
        if finding.status != "fail" or finding.baseline_state == "absent":
            return False
        return (
            fnmatchcase(finding.rule_id, self.rule)
            and fnmatchcase(finding.resource, self.resource)
            and _optional_match(finding.server, self.server)
            and _optional_match(finding.app, self.app)
            and _optional_match(finding.principal, self.principal)
        )

    def expired(self, today: date) -> bool:
        """A waiver applies through its ``expires`` day and not after."""
        return today > self.expires


def _optional_match(value: str | None, pattern: str | None) -> bool:
    if pattern is None:
        return True
    return value is not None and fnmatchcase(value, pattern)


class _WaiverDocument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    waiver: tuple[WaiverEntry, ...] = ()


@dataclass(frozen=True)
class WaiverFile:
    """The waivers of one file, each with the line of its ``[[waiver]]`` header."""

    path: str
    entries: tuple[WaiverEntry, ...]
    lines: tuple[int | None, ...]

    def source(self, index: int) -> str:
        line = self.lines[index]
        return f"{self.path}:{line}" if line is not None else f"{self.path}: waiver[{index}]"


def _header_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), start=1) if _WAIVER_HEADER.match(line)]


def _place(loc: Sequence[int | str], lines: list[int]) -> str:
    if len(loc) >= 2 and loc[0] == "waiver" and isinstance(loc[1], int):
        index = loc[1]
        line = f" (line {lines[index]})" if index < len(lines) else ""
        rest = ".".join(str(p) for p in loc[2:])
        return f"waiver #{index + 1}{line}" + (f": {rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "(top level)"


def _problem(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def parse_waivers(text: str, path: str) -> WaiverFile:
    """Validate a waivers TOML document; every problem is one ConfigError line."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    lines = _header_lines(text)
    if "waiver" in data and not isinstance(data["waiver"], list):
        raise ConfigError(f"{path}: waiver: must be an array of tables, written [[waiver]]")
    try:
        document = _WaiverDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ConfigError(
            f"{path}: {_place(first['loc'], lines)}: {_problem(first)}{more}"
        ) from None
    padded: list[int | None] = [*lines[: len(document.waiver)]]
    padded += [None] * (len(document.waiver) - len(padded))
    return WaiverFile(path=path, entries=document.waiver, lines=tuple(padded))


def load_waivers(path: Path) -> WaiverFile:
    """Read and validate a waivers file."""
    return parse_waivers(read_input(path, TOML_LIMIT_BYTES), str(path))


def _as_waiver(entry: WaiverEntry, source: str) -> Waiver:
    return Waiver(
        reason=entry.reason,
        owner=entry.owner,
        expires=entry.expires,
        rule=entry.rule,
        resource=entry.resource,
        server=entry.server,
        app=entry.app,
        principal=entry.principal,
        created=entry.created,
        source=source,
    )


class _Ran:
    """The servers each rule really ran on (``evaluated``), to ask of a waiver whether a
    rule it names ran on a server it names.

    A fleet's results hold thousands of (rule, server) pairs, and every waiver that
    matched nothing is asked. Each rule glob is tried once on the few rule ids and each
    server glob once on the servers (waivers share a few globs, or name their server),
    and each pair of them is answered once, where trying every waiver on every pair
    made stale waivers times rules times servers work.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._servers: dict[str, set[str]] = {}
        for rule, server in pairs:
            self._servers.setdefault(rule, set()).add(server)
        self._all = frozenset(s for servers in self._servers.values() for s in servers)
        self._rules_named: dict[str, list[set[str]]] = {}
        self._servers_named: dict[str, frozenset[str]] = {}
        self._answers: dict[tuple[str, str | None], bool] = {}

    def evaluated_by(self, entry: WaiverEntry) -> bool:
        """Whether a rule the waiver names really ran on a server it names."""
        key = (entry.rule, entry.server)
        answer = self._answers.get(key)
        if answer is None:
            rules = self._rules(entry.rule)
            if entry.server is None:
                answer = bool(rules)
            else:
                named = self._named(entry.server)
                answer = any(not servers.isdisjoint(named) for servers in rules)
            self._answers[key] = answer
        return answer

    def _rules(self, pattern: str) -> list[set[str]]:
        """The servers of each rule ``pattern`` names."""
        found = self._rules_named.get(pattern)
        if found is None:
            matches = _glob(pattern)
            found = [servers for rule, servers in self._servers.items() if matches(rule)]
            self._rules_named[pattern] = found
        return found

    def _named(self, pattern: str) -> frozenset[str]:
        """The servers ``pattern`` names."""
        found = self._servers_named.get(pattern)
        if found is None:
            if _GLOB_CHARS.search(pattern):
                matches = _glob(pattern)
                found = frozenset(s for s in self._all if matches(s))
            else:
                found = frozenset((pattern,))
            self._servers_named[pattern] = found
        return found


_GLOB_CHARS = re.compile(r"[*?\[]")
# The waiver's optional globs, each matched against the finding's field of that name.
_OPTIONAL = ("server", "app", "principal")


def _glob(pattern: str) -> Callable[[str], object]:
    """``fnmatchcase(name, pattern)`` for one pattern, compiled once."""
    return re.compile(fnmatch.translate(pattern)).match


class _Index:
    """The waivers that may cover a finding, found without trying every waiver.

    Per rule id (the few the results hold), the waivers whose rule glob takes it: those
    naming an exact resource by that resource, the others in a list; each pattern
    compiled once. A finding then meets only the waivers that could match it, in file
    order, where trying every waiver made waivers times findings work.
    """

    def __init__(self, entries: Sequence[WaiverEntry]) -> None:
        self.entries = entries
        self.rule = [_glob(e.rule) for e in entries]
        self.resource = [_glob(e.resource) for e in entries]
        self.others = [
            tuple(
                (field, _glob(pattern))
                for field in _OPTIONAL
                if (pattern := getattr(e, field)) is not None
            )
            for e in entries
        ]
        self.by_rule: dict[str, tuple[dict[str, list[int]], list[int]]] = {}

    def _for_rule(self, rule_id: str) -> tuple[dict[str, list[int]], list[int]]:
        found = self.by_rule.get(rule_id)
        if found is None:
            exact: dict[str, list[int]] = {}
            globs: list[int] = []
            for i, entry in enumerate(self.entries):
                if not self.rule[i](rule_id):
                    continue
                if _GLOB_CHARS.search(entry.resource):
                    globs.append(i)
                else:
                    exact.setdefault(entry.resource, []).append(i)
            found = self.by_rule[rule_id] = (exact, globs)
        return found

    def matching(self, finding: Finding) -> list[int]:
        """The waivers that cover ``finding``, in file order."""
        if finding.status != "fail" or finding.baseline_state == "absent":
            return []
        exact, globs = self._for_rule(finding.rule_id)
        named = exact.get(finding.resource, ())
        candidates = heapq.merge(named, (i for i in globs if self.resource[i](finding.resource)))
        return [
            i
            for i in candidates
            if all(
                (value := getattr(finding, field)) is not None and match(value)
                for field, match in self.others[i]
            )
        ]


def apply_waivers(results: Results, waivers: WaiverFile, *, today: date) -> Results:
    """Waive the failing findings the file covers; report expired and stale waivers.

    The first unexpired waiver (in file order) that matches a finding applies.
    ``today`` is the date waivers are judged against (the gate passes the scan's UTC date).
    """
    active = [not entry.expired(today) for entry in waivers.entries]
    matched: dict[int, list[str]] = {i: [] for i in range(len(waivers.entries))}
    index = _Index(waivers.entries)
    findings: list[Finding] = []
    applied = 0
    for finding in results.findings:
        covering = index.matching(finding)
        for i in covering:
            matched[i].append(finding.fingerprint)
        cover = next((i for i in covering if active[i]), None)
        if cover is None:
            findings.append(finding)
            continue
        applied += 1
        findings.append(
            finding.model_copy(
                update={
                    "status": "waived",
                    "waiver": _as_waiver(waivers.entries[cover], waivers.source(cover)),
                }
            )
        )
    ran = _Ran(evaluated(results))
    expired: list[WaiverNote] = []
    stale: list[WaiverNote] = []
    for i, entry in enumerate(waivers.entries):
        note = WaiverNote(waiver=_as_waiver(entry, waivers.source(i)), findings=tuple(matched[i]))
        if entry.expired(today):
            expired.append(note)
        elif not matched[i] and ran.evaluated_by(entry):
            stale.append(note)
    report = WaiverReport(
        file=waivers.path, applied=applied, expired=tuple(expired), stale=tuple(stale)
    )
    return with_findings(results, findings, waivers=report)


def waiver_warnings(report: WaiverReport, limit: int | None = None) -> list[str]:
    """One line per waiver that needs its owner's attention; with ``limit``, the first
    ``limit`` of them and a line counting the rest (the results' ``waivers`` section
    names every one)."""
    lines: list[str] = []
    for note in report.expired:
        w = note.waiver
        count = len(note.findings)
        tail = f"; {count} finding(s) it covered fail again" if count else ""
        lines.append(
            f"{w.source}: waiver for {w.rule} {w.resource} expired on {w.expires.isoformat()} "
            f"(owner {w.owner}){tail}"
        )
    for note in report.stale:
        w = note.waiver
        lines.append(
            f"{w.source}: waiver for {w.rule} {w.resource} matches no finding (stale; "
            f"owner {w.owner}): remove it"
        )
    if limit is not None and len(lines) > limit:
        rest = len(lines) - limit
        lines = [
            *lines[:limit],
            f"{report.file}: {rest:,} more expired or stale waiver(s); the results' "
            "'waivers' section names every one",
        ]
    return lines
