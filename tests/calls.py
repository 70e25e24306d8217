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


def counted_steps(work: Callable[[], T]) -> tuple[int, T]:
    """The bytecode instructions run in Python frames while ``work`` runs, and what it
    returned.

    Finer than ``counted_calls``: a loop inside one comprehension or generator (every
    session scanned for each role) shows here, where it makes no calls. Work done inside
    C (``x in some_tuple``) is one step whatever its size and shows in neither.
    """
    steps = 0

    def trace(frame: FrameType, event: str, _arg: Any) -> Any:
        nonlocal steps
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
        elif event == "opcode":
            steps += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        result = work()
    finally:
        sys.settrace(previous)
    return steps, result
