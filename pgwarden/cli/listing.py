"""What ``scan`` and ``demo`` print about the findings: a bounded summary, or every finding.

When reports are written to files, the terminal shows a summary whose size does not
grow with the findings: the counts by severity and by rule, the most severe findings
(a screenful), each rule with many findings told once (count, examples, fix), and
where the reports are. Without report flags the terminal is the report: every
finding, grouped by rule, as plain text wrapped to the terminal's width (80 columns
when stdout is not a terminal), then the counts.

Plain text rather than a rich table: a table of 12,000 rows took longer to draw than
the scan took to run, and at 80 columns squeezed the message into 13 characters. The
lines are built as strings and written at once; names from the server are data, so
control characters (a role named with a terminal escape sequence) are shown escaped.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache

from pgwarden.cli.terminal import Console
from pgwarden.model.results import SEVERITY_ORDER, SUMMARY_STATUSES, Finding, Results
from pgwarden.reports.rule_groups import ARROW, RuleGroup, groups_by_status, stories, where
from pgwarden.reports.view import server_names, waiver_text

# Most severe failing findings a summary shows (two lines each), at most PER_RULE a rule.
MOST_SEVERE = 10
PER_RULE = 3
MIN_WIDTH = 40
INDENT = "    "
# Columns a finding's place keeps in the summary beside a long server name.
MIN_PLACE = 20

_COLORS = {"critical": "\x1b[1;31m", "high": "\x1b[31m", "medium": "\x1b[33m", "low": "\x1b[36m"}
_RESET = "\x1b[0m"
# C0 and C1 control characters, DEL, and the bidirectional overrides that make a name
# read as something else: shown as escapes, never sent to the terminal.
_UNPRINTABLE = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (
        *range(0x20),
        *range(0x7F, 0xA0),
        0x200E,
        0x200F,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
}


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``), safe to write to a terminal."""
    return text.translate(_UNPRINTABLE)


class FindingsText:
    """The findings of one results document as lines of plain text ``width`` wide."""

    def __init__(self, results: Results, width: int, *, color: bool = False) -> None:
        self.results = results
        self.width = max(width, MIN_WIDTH)
        self.color = color
        self.groups = groups_by_status(results)
        self.failing = self.groups.get(("fail", False), [])
        self.errors = self.groups.get(("error", False), [])
        self.waived = self.groups.get(("waived", False), [])
        self.many_servers = len(server_names(results)) > 1

    # -- pieces ------------------------------------------------------------------

    def _severity(self, severity: str, width: int = 8) -> str:
        label = severity.ljust(width)
        return f"{_COLORS[severity]}{label}{_RESET}" if self.color else label

    def _fit(self, text: str, indent: str = "") -> str:
        """One line, cut with an ellipsis to the width."""
        return indent + _cut(printable(text), self.width - cells(indent))

    def _wrap(self, text: str, indent: str) -> list[str]:
        """``text`` wrapped at spaces to the width, every line indented.

        A greedy split, not textwrap: thousands of messages are wrapped, and this is a
        fraction of textwrap's cost for what a message holds (words and names).
        """
        room = self.width - cells(indent)
        lines: list[str] = []
        line, used = "", 0
        for word in printable(text).split(" "):
            size = cells(word)
            while size > room:  # a name longer than the line: cut it across lines
                if line:
                    lines.append(indent + line)
                    line, used = "", 0
                head, word = _split(word, room)
                lines.append(indent + head)
                size = cells(word)
            if not line:
                line, used = word, size
            elif used + 1 + size <= room:
                line, used = f"{line} {word}", used + 1 + size
            else:
                lines.append(indent + line)
                line, used = word, size
        lines.append(indent + line)
        return lines

    # -- the counts ----------------------------------------------------------------

    def head(self) -> list[str]:
        """What the scan found, in counts: a few lines whatever the findings."""
        results, summary = self.results, self.results.summary
        # Pass records (--include-passed) are evidence for the reports, not for reading here.
        passes = sum(group.count for group in self.groups.get(("pass", False), []))
        lines = [
            self._fit(
                f"pgwarden: {summary.fail:,} failing, {summary.error:,} not evaluated, "
                f"{summary.waived:,} waived; {summary.pass_:,} rule checks passed"
                + (f", {passes:,} pass records (in the reports)" if passes else "")
            )
        ]
        if not results.scan.complete:
            lines.append("  scan INCOMPLETE: a missing finding is not a pass")
        if summary.by_severity:
            counts = " · ".join(
                f"{severity} {count:,}" for severity, count in summary.by_severity.items()
            )
            lines.append(self._fit(f"failing by severity: {counts}", "  "))
        if results.baseline is not None:
            b = results.baseline
            lines.append(
                self._fit(
                    f"baseline: {b.new:,} new, {b.unchanged:,} unchanged, "
                    f"{b.absent:,} absent (fixed)",
                    "  ",
                )
            )
        if results.history is not None:
            h = results.history
            lines.append(
                self._fit(
                    f"run {h.run_id}: {h.new:,} new, {h.resolved:,} resolved since the "
                    "previous run",
                    "  ",
                )
            )
        return lines

    def by_rule(self) -> list[str]:
        """One line per rule with findings: bounded by the catalogue, not the findings."""
        lines: list[str] = []
        if self.failing:
            lines += ["", "Failing, by rule:"]
            for group in self.failing:
                # The severity column is padded outside the cut: its colour codes take no
                # room on the screen.
                title = _cut(printable(group.rule.title), self.width - 34)
                lines.append(
                    f"  {group.count:>7,}  {self._severity(group.severity)} "
                    f"{group.rule.id:<13} {title}"
                )
        if self.errors:
            lines += ["", "Not evaluated, by rule:"]
            for group in self.errors:
                lines.append(
                    self._fit(
                        f"{group.count:>7,}  {group.rule.id:<13} {group.findings[0].message}", "  "
                    )
                )
        if self.waived:
            lines += ["", "Waived, by rule:"]
            for group in self.waived:
                lines.append(
                    self._fit(f"{group.count:>7,}  {group.rule.id:<13} {group.rule.title}", "  ")
                )
        return lines

    def _finding_lines(self, finding: Finding, *, full: bool) -> list[str]:
        """A finding: where it is (and its state), then its message; ``full`` wraps both."""
        server = f"{finding.server}: " if self.many_servers else ""
        notes: list[str] = []
        if finding.baseline_state is not None:
            notes.append(finding.baseline_state)
        if finding.age_days is not None:
            notes.append(f"{finding.age_days}d old")
        state = f" [{', '.join(notes)}]" if notes else ""
        spot = where(finding)
        if not full:
            # Two lines, each cut to the width: severity and rule, then where; the message.
            # The names of the place are cut in the middle, its server and state kept.
            room = self.width - len("  ") - 9 - 14
            fitted = _fit_place(printable(spot), max(room - cells(server + state), MIN_PLACE))
            shown = _cut(printable(server) + fitted + printable(state), room)
            return [
                f"  {self._severity(finding.severity)} {finding.rule_id:<13} {shown}",
                self._fit(finding.message, INDENT),
            ]
        lines = self._wrap(server + spot + state, "  ")
        lines += self._wrap(finding.message, INDENT)
        if finding.waiver is not None:
            lines += self._wrap(f"waived: {waiver_text(finding.waiver)}", INDENT)
        return lines

    # -- the summary -------------------------------------------------------------

    def most_severe(self) -> list[str]:
        """The most severe failing findings, a few per rule, a screenful at most."""
        chosen: list[Finding] = []
        for group in self.failing:
            chosen += group.findings[:PER_RULE]
        chosen.sort(key=lambda f: -SEVERITY_ORDER[f.severity])  # stable: rules' order kept
        chosen = chosen[:MOST_SEVERE]
        if not chosen:
            return []
        lines = ["", "Most severe:"]
        for finding in chosen:
            lines += self._finding_lines(finding, full=False)
        left = self.results.summary.fail - len(chosen)
        if left > 0:
            lines.append(f"  … and {left:,} more failing finding{'' if left == 1 else 's'}")
        return lines

    def told_once(self) -> list[str]:
        """Each rule with many failing findings, once: count, examples and the fix."""
        told = stories(self.failing)
        if not told:
            return []
        lines = ["", "Many of one kind:"]
        for group in told:
            lines += self._story(group)
        return lines

    def _story(self, group: RuleGroup) -> list[str]:
        places = [printable(where(f)) for f in group.examples()]
        room = self.width - cells(INDENT) - len("e.g. , …")
        # As many examples as fit whole; when not even one does (long names), the first,
        # its names cut in the middle.
        while len(places) > 1 and cells(", ".join(places)) > room:
            places.pop()
        lines = [
            self._fit(f"{group.rule.id}: {group.count:,} findings — {group.rule.title}", "  "),
            f"{INDENT}e.g. {_fit_place(', '.join(places), room)}, …",
        ]
        if group.fix:
            lines.append(self._fit(f"fix: {group.fix}", INDENT))
        return lines

    def summary(self, written: Sequence[tuple[str, str]]) -> list[str]:
        """The bounded summary, ending with where the reports were written."""
        lines = [*self.head(), *self.by_rule(), *self.most_severe(), *self.told_once()]
        if written:
            lines += ["", "Reports:"]
            lines += [self._fit(f"{path} ({what})", "  ") for what, path in written]
        return lines

    # -- the full listing ----------------------------------------------------------

    def listing(self) -> Iterator[str]:
        """Every finding, grouped by rule (most severe rules first), then the counts."""
        sections: list[tuple[str, list[RuleGroup]]] = [
            ("failing", self.failing),
            ("not evaluated", self.errors),
            ("waived", self.waived),
        ]
        fixed = [
            group
            for status in ("fail", "error", "waived")
            for group in self.groups.get((status, True), [])
        ]
        if fixed:
            sections.append(("fixed since the baseline (absent)", fixed))
        for label, groups in sections:
            for group in groups:
                yield ""
                yield from self._wrap(
                    f"{group.rule.id} · {group.severity} · {group.count:,} {label} — "
                    f"{group.rule.title}",
                    "",
                )
                if label == "failing" and group.fix:
                    yield from self._wrap(f"fix: {group.fix}", "  ")
                for finding in group.findings:
                    yield from self._finding_lines(finding, full=True)
        yield ""
        yield from self.head()


def cells(text: str) -> int:
    """The terminal columns ``text`` takes: two for a wide character (CJK, most emoji),
    none for a combining mark or a zero-width character, one for the rest."""
    if text.isascii():
        return len(text)
    return sum(map(_char_cells, text))


@lru_cache(maxsize=4096)
def _char_cells(char: str) -> int:
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _split(text: str, room: int) -> tuple[str, str]:
    """The longest start of ``text`` that fits ``room`` columns (at least one
    character), and the rest."""
    if text.isascii():
        return text[:room], text[room:]
    used = 0
    for index, char in enumerate(text):
        used += _char_cells(char)
        if used > room:
            index = max(index, 1)
            return text[:index], text[index:]
    return text, ""


def _cut(text: str, room: int) -> str:
    """``text`` in ``room`` columns, cut with an ellipsis when longer."""
    if cells(text) <= room:
        return text
    return _split(text, room - 1)[0] + "…"


def _fit_place(place: str, room: int) -> str:
    """A place (``resource ← principal``) in ``room`` columns: each name cut in the
    middle when they do not fit, so that what tells them apart, often at their end
    (``…_db0042``, ``…@contoso.com``), and their kind, at their start, both show."""
    if cells(place) <= room:
        return place
    parts = place.split(ARROW)
    left = room - cells(ARROW) * (len(parts) - 1)
    # The room shared out shortest first: a name shorter than its share keeps it whole
    # and leaves the rest to the longer ones.
    allotted: dict[int, int] = {}
    for done, index in enumerate(sorted(range(len(parts)), key=lambda i: cells(parts[i]))):
        share = max(left // (len(parts) - done), 3)
        allotted[index] = min(cells(parts[index]), share)
        left -= allotted[index]
    shown = [_cut_middle(part, allotted[index]) for index, part in enumerate(parts)]
    return _cut(ARROW.join(shown), room)


def _cut_middle(text: str, room: int) -> str:
    """``text`` in ``room`` columns, its middle left out (an ellipsis) when longer."""
    if cells(text) <= room:
        return text
    head = (room - 1) // 2
    tail = _split(text[::-1], room - 1 - head)[0][::-1]
    return _split(text, head)[0] + "…" + tail


def print_findings(
    console: Console, results: Results, written: Sequence[tuple[str, str]] = ()
) -> None:
    """The summary when reports were written to files (``written``), else every finding.

    Written to a file or a pipe (a CI log), the text is plain and rich is not loaded.
    """
    plain = console.plain_out()
    if plain is not None:
        file, width = plain
        color = False
    else:
        out = console.out
        file, width = out.file, out.width
        color = out.is_terminal and out.color_system is not None
    text = FindingsText(results, width, color=color)
    lines = text.summary(written) if written else list(text.listing())
    file.write("\n".join(lines) + "\n")
    file.flush()


# The compliance table's names keep this many columns before its headers are shortened.
MIN_NAME = 12
_SHORT_STATUS = {"error": "err", "not applicable": "n/a"}


def compliance_lines(results: Results, width: int = 80) -> list[str]:
    """How many controls of each framework pass, fail, need a person or do not apply:
    the terminal's compliance table (``compliance_tables``) as plain, aligned lines,
    ``width`` columns at most: the framework ids (``pgwarden compliance`` lists them)
    are left out when they do not fit, then the names are cut."""
    width = max(width, MIN_WIDTH)
    frameworks = results.compliance or ()
    names = [printable(f.short_name or f.name) for f in frameworks]
    ids = [printable(f.id) for f in frameworks]
    counts = [[str(count) for _status, count in f.summary.by_status()] for f in frameworks]
    headers = list(SUMMARY_STATUSES)

    def room_for(headers: list[str]) -> tuple[list[int], int]:
        widths = [
            max([len(header)] + [len(row[column]) for row in counts])
            for column, header in enumerate(headers)
        ]
        # Two spaces before each column.
        return widths, sum(2 + w for w in widths)

    count_widths, counts_room = room_for(headers)
    if 2 + MIN_NAME + counts_room > width:
        headers = [_SHORT_STATUS.get(h, h) for h in headers]
        count_widths, counts_room = room_for(headers)
    name_width = max([len("framework")] + [cells(name) for name in names])
    id_width = max([len("id")] + [len(i) for i in ids])
    with_ids = 2 + name_width + 2 + id_width + counts_room <= width
    name_width = min(name_width, max(width - 2 - counts_room, 6))

    def line(name: str, ident: str, row: Sequence[str]) -> str:
        name = _cut(name, name_width)
        cells_ = [name + " " * (name_width - cells(name))]
        if with_ids:
            cells_.append(ident.ljust(id_width))
        cells_ += [cell.rjust(w) for cell, w in zip(row, count_widths, strict=True)]
        return "  " + "  ".join(cells_).rstrip()

    lines = ["", "compliance by framework", line("framework", "id", headers)]
    lines += [line(*row) for row in zip(names, ids, counts, strict=True)]
    return lines


def print_compliance(console: Console, results: Results) -> None:
    """The compliance table after the findings: plain lines to a file or a pipe (rich is
    not loaded), a rich table on a terminal."""
    plain = console.plain_out()
    if plain is not None:
        file, width = plain
        file.write("\n".join(compliance_lines(results, width)) + "\n")
        file.flush()
        return
    from pgwarden.cli.compliance_tables import frameworks_summary_table

    console.print(frameworks_summary_table(results))
