"""A blind spot: what a collector could not see, and what would let it."""

from __future__ import annotations

from pgwarden.model.frozen import Frozen


class Gap(Frozen):
    """Something the collector could not see, and what would let it."""

    section: str
    reason: str
    fix: str | None = None
