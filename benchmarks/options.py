"""The benchmark commands' bounded options: a value out of its range, or not a number,
is one line from argparse and exit 2, before anything is built."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", int, float)


def within(parse: Callable[[str], T], what: str, low: T, high: T) -> Callable[[str], T]:
    """An argument type: ``what`` (read by ``parse``) from ``low`` to ``high``."""

    def read(text: str) -> T:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{_shown(value)} is outside {_shown(low)} to {_shown(high)}"
            )
        return value

    return read


def _shown(number: float) -> str:
    """A bound or value as the help says it: 1,000,000, 0.1, 200."""
    return f"{number:,}" if isinstance(number, int) else f"{number:,g}"


def whole(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""
    return within(int, "a whole number", low, high)


def seconds(low: float, high: float) -> Callable[[str], float]:
    """A number of seconds from ``low`` to ``high``."""
    return within(float, "a number", low, high)


JOBS = whole(1, 64)  # parallel connections, as pgwarden scan's --jobs
REPEAT = whole(1, 20)  # runs of one measurement, the best kept
SCAN_TIMEOUT = seconds(1.0, 3600.0)  # seconds one scan may take
