"""Shards: N copies of one command, each scanning its own part of the servers.

``--shard I/N`` (I from 0 to N-1, as a Kubernetes Indexed Job's
``JOB_COMPLETION_INDEX`` counts) keeps the servers whose stable hash falls in shard I.
The hash is SHA-256 of the server's ARM id (lower-cased) when it is known, else of its
name: the same on every machine and every run, so N copies of the same command cover
the fleet exactly once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pgwarden.model.errors import UsageError

_SHARD = re.compile(r"^\s*(\d{1,6})\s*/\s*(\d{1,6})\s*$")
MAX_SHARDS = 10_000


@dataclass(frozen=True, order=True)
class Shard:
    """Shard ``index`` of ``count`` (``index`` counts from 0)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise UsageError(f"--shard: N must be between 1 and {MAX_SHARDS}")
        if not 0 <= self.index < self.count:
            raise UsageError(
                f"--shard {self.index}/{self.count}: I counts from 0 to {self.count - 1}"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, key: str) -> bool:
        """Whether the server with this key (``shard_key``) belongs to this shard."""
        return shard_of(key, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """``"I/N"`` as a Shard; anything else is one UsageError line."""
    match = _SHARD.match(text)
    if match is None:
        raise UsageError(f"--shard {text!r}: give I/N, like 0/4 (I from 0 to N-1)")
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_of(key: str, count: int) -> int:
    """The shard (0 to count-1) a server key falls in: stable across machines and runs."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def arm_server_id(subscription_id: str, resource_group: str, name: str) -> str:
    """A Flexible Server's ARM id, lower-cased (ARM ids compare case-insensitively)."""
    return (
        f"/subscriptions/{subscription_id}/resourcegroups/{resource_group}"
        f"/providers/microsoft.dbforpostgresql/flexibleservers/{name}"
    ).lower()
