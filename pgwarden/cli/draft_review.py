"""What ``pgwarden init`` was unsure of: review items, most important first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Priority = Literal["high", "medium", "low"]
PRIORITY_ORDER: dict[Priority, int] = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class ReviewItem:
    """One doubt of the draft: what to check, about what, and why it matters.

    ``kind`` is a stable code for tooling (``admin-guessed``, ``cross-app-access``, …);
    ``subject`` is ``TYPE/NAME`` as in results (``role/…``, ``database/…``, ``app/…``).
    """

    priority: Priority
    kind: str
    subject: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "priority": self.priority,
            "kind": self.kind,
            "subject": self.subject,
            "message": self.message,
        }


def ordered(items: Iterable[ReviewItem]) -> tuple[ReviewItem, ...]:
    """Most important first; within a priority, in the order they were found."""
    return tuple(sorted(items, key=lambda item: PRIORITY_ORDER[item.priority]))


def review_lines(items: Iterable[ReviewItem], limit: int = 40) -> list[str]:
    """The review list as a person reads it at the end of ``init``: the ``limit`` most
    important items (``--json`` has them all)."""
    items = tuple(items)
    if not items:
        return ["review: nothing in the draft is a guess beyond the REVIEW comments"]
    lines = [f"review: {len(items)} thing(s) init was unsure of, most important first:"]
    shown = items[:limit]
    width = len(str(len(shown)))
    for number, item in enumerate(shown, start=1):
        lines.append(f"  {number:>{width}}. [{item.priority}] {item.subject}: {item.message}")
    if len(items) > limit:
        lines.append(f"  … and {len(items) - limit} more (--json lists them all)")
    return lines
