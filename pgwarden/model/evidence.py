"""Bounded evidence: what a finding lists grows with what a person must act on, not the server.

A finding names what someone needs to act: the first items of a list, sorted, the
total, and how to list the rest. On a server of 10,000 roles a login may reach 500
databases through PUBLIC; writing all of them into each of its findings made results
files of tens of megabytes that nobody reads. The convention, also stated in the
results JSON Schema (``Finding.evidence``):

* a list (or mapping) in the evidence holds at most ``MAX_LISTED`` items;
* when one is cut, ``<key>_total`` gives how many there are in all, and
  ``<key>_more``, where the rule knows one, a SQL query or command that lists them.

Rules cut their lists with ``put_capped`` (they know the order that matters and how
to list the rest); the engine cuts what a rule left longer with ``bounded_evidence``,
so no plug-in can make one finding grow with the server either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any, TypeVar

from pgwarden.model.identifiers import printable

# Items a list in a finding's evidence holds; the rest are counted (``<key>_total``).
MAX_LISTED = 20
# Ways into one resource (accesses, roles reached by SET ROLE) a finding spells out in
# full when a principal has many; the rest are counted.
MAX_WAYS_SHOWN = 5
# Characters of a finding's message: it says what is wrong in a line or two, naming the
# first few of anything (``summarize_targets``); a longer one is cut (``bounded_message``).
MAX_MESSAGE_CHARS = 1000
TOTAL_SUFFIX = "_total"
MORE_SUFFIX = "_more"

T = TypeVar("T")


def first(items: Iterable[T], limit: int = MAX_LISTED) -> list[T]:
    """The first ``limit`` of ``items`` (read lazily: the rest is never built)."""
    return list(islice(items, limit))


def put_capped(
    evidence: dict[str, Any],
    key: str,
    items: Iterable[Any],
    total: int,
    more: str | None = None,
    *,
    limit: int = MAX_LISTED,
) -> None:
    """Put the first ``limit`` (``MAX_LISTED``) of ``items`` (``total`` in all) under
    ``key``.

    ``items`` should already be in the order a reader wants (sorted, or most
    important first); only as many as are shown are read. When some are left out,
    ``<key>_total`` says how many there are and ``<key>_more`` how to list them all.
    """
    evidence[key] = first(items, limit)
    if total > limit:
        evidence[key + TOTAL_SUFFIX] = total
        if more is not None:
            evidence[key + MORE_SUFFIX] = more


def put_capped_mapping(
    evidence: dict[str, Any],
    key: str,
    pairs: Iterable[tuple[str, Any]],
    total: int,
    more: str | None = None,
) -> None:
    """``put_capped`` for a mapping: the first ``MAX_LISTED`` of ``pairs``, as an object."""
    evidence[key] = dict(first(pairs))
    if total > MAX_LISTED:
        evidence[key + TOTAL_SUFFIX] = total
        if more is not None:
            evidence[key + MORE_SUFFIX] = more


# What ``bounded_evidence`` cuts as a list (a tuple, not a union: asked of every value of
# every finding's evidence).
_SEQUENCES = (list, tuple)


def bounded_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """``evidence`` with every top-level list or mapping cut to ``MAX_LISTED`` items.

    What a rule already capped passes unchanged (and uncopied, when nothing is cut):
    this only catches a list a rule left to grow with the server. Nested values are the
    rule's to bound; checking them here would cost every finding a walk of its evidence.
    """
    cut: dict[str, Any] | None = None
    for key, value in evidence.items():
        if isinstance(value, _SEQUENCES):
            size = len(value)
            if size <= MAX_LISTED:
                continue
            shown: Any = list(value[:MAX_LISTED])
        elif isinstance(value, dict):
            size = len(value)
            if size <= MAX_LISTED:
                continue
            shown = dict(islice(value.items(), MAX_LISTED))
        else:
            continue
        if cut is None:
            cut = dict(evidence)
        cut[key] = shown
        cut.setdefault(key + TOTAL_SUFFIX, size)
    return evidence if cut is None else cut


def bounded_message(message: str) -> str:
    """``message`` with every character that is not printable escaped, cut to
    ``MAX_MESSAGE_CHARS`` and ending in an ellipsis when cut: the engine's guard against
    a name that would run an escape code where the message is shown, and a plug-in's
    message that names everything it found."""
    message = printable(message)
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def shown_script(script: str | None) -> str | None:
    """A remediation script with every character that is not printable escaped, line by
    line (the engine's guard: built-in rules quote such names with escapes PostgreSQL
    reads, ``identifiers.quote_ident``; a name left raw must not run an escape code where
    the script is shown)."""
    # (Line breaks are the script's own: checked as spaces, in one pass in C.)
    if script is None or script.replace("\n", " ").isprintable():
        return script
    return "\n".join(printable(line) for line in script.split("\n"))


def summarize_targets(targets: Sequence[str], total: int | None = None) -> str:
    """The first three ``targets``, then how many more there are (``total`` in all, when
    only the first few are given)."""
    shown = ", ".join(targets[:3])
    count = len(targets) if total is None else total
    return shown + (f" and {count - 3} more" if count > 3 else "")


def summarize_phrases(phrases: Sequence[str], separator: str, limit: int = 3) -> str:
    """The first ``limit`` phrases joined by ``separator``, then how many more there are
    (a message names the first few ways in, however many there are)."""
    shown = separator.join(phrases[:limit])
    more = len(phrases) - limit
    return shown + (f" and {more} more way{'s' if more != 1 else ''}" if more > 0 else "")
