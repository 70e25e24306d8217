"""Azure throttling, shared by every client of a scan.

ARM throttles per principal, Resource Graph per user (about 15 queries in 5 seconds):
when one call of a scan is told to wait, every other call to the same service waits
with it, rather than each server's collector running into the same 429 in turn.
``ThrottleGate`` holds, per service, the moment calls may resume; ``QueryPacer`` keeps
Resource Graph queries within the documented quota before Azure has to say so.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

RESOURCE_GRAPH_QUOTA = 15
RESOURCE_GRAPH_WINDOW_S = 5.0
_HMS = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


class ThrottleGate:
    """When calls to each service may resume; thread-safe, one per scan."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._resume: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self.waited_s = 0.0

    def hold(self, service: str, seconds: float) -> None:
        """Azure asked a call to ``service`` to wait ``seconds``: every call waits as long."""
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._resume[service] = max(self._resume.get(service, 0.0), until)

    def wait(self, service: str) -> float:
        """Wait until calls to ``service`` may go on; the seconds waited."""
        with self._lock:
            left = self._resume.get(service, 0.0) - self._clock()
        if left <= 0:
            return 0.0
        self._sleep(left)
        with self._lock:
            self.waited_s += left
        return left


class QueryPacer:
    """At most ``quota`` queries in any ``window`` seconds (Resource Graph's user quota)."""

    def __init__(
        self,
        quota: int = RESOURCE_GRAPH_QUOTA,
        window: float = RESOURCE_GRAPH_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.quota = quota
        self.window = window
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def take(self) -> None:
        """Block until one more query fits in the window, and count it."""
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.quota:
                    self._sent.append(now)
                    return
                left = self.window - (now - self._sent[0])
            self._sleep(max(left, 0.01))


def quota_reset_seconds(headers: Mapping[str, str]) -> float | None:
    """Resource Graph's ``x-ms-user-quota-resets-after`` (``hh:mm:ss``) in seconds."""
    value = next(
        (v for k, v in headers.items() if k.lower() == "x-ms-user-quota-resets-after"), None
    )
    if value is None:
        return None
    match = _HMS.match(value.strip())
    if match is None:
        return None
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86_400 + int(hours) * 3_600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


def quota_remaining(headers: Mapping[str, str]) -> int | None:
    """Resource Graph's ``x-ms-user-quota-remaining``: queries left in the window."""
    value = next((v for k, v in headers.items() if k.lower() == "x-ms-user-quota-remaining"), None)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
