"""Work counted, not timed: how many Python and C function calls a piece of code makes.

Scaling tests compare the count at two sizes (twice the input should be about twice the
calls), which a loaded machine cannot disturb as it would a stopwatch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def counted_calls(work: Callable[[], T]) -> tuple[int, T]:
    """The function calls made while ``work`` runs, and what it returned."""
    calls = 0

    def count(_frame: FrameType, event: str, _arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        result = work()
    finally:
        sys.setprofile(None)
    return calls, result
