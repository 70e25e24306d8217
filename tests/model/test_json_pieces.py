"""A snapshot written a piece at a time is byte for byte the snapshot written whole, and
no piece is more than one database's details."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter

from pgwarden.model.azure import AzureServer, AzureSnapshot
from pgwarden.model.gap import Gap
from pgwarden.model.json_pieces import spliced, whole
from pgwarden.model.snapshot import ObjectGrant, ServerSnapshot, Snapshot
from tests.perf.shapes import unmapped_logins_snapshot


def _whole(snapshot: Snapshot) -> bytes:
    return (snapshot.model_dump_json(indent=1) + "\n").encode("utf-8")


def _servers() -> list[ServerSnapshot]:
    big = unmapped_logins_snapshot(12, 40, definers=True, channels=True, tables=5, chain=3)
    server = big.servers[0]
    azure = AzureSnapshot(
        cloud="AzureCloud",
        server=AzureServer(
            id="x", name="pg-ünïcode-数据", subscription_id="s", resource_group="rg", fqdn="h"
        ),
    )
    assert server.postgres is not None
    return [
        server,
        server.model_copy(update={"name": "no details", "azure": azure}).model_copy(
            update={"postgres": server.postgres.model_copy(update={"database_details": ()})}
        ),
        ServerSnapshot(name="unreached", errors=(Gap(section="postgres", reason="refused"),)),
        ServerSnapshot(name="azure only", azure=azure),
    ]


@pytest.mark.parametrize(
    "servers",
    [[], [0], [2], [3], [1], [0, 1, 2, 3], [3, 0, 2, 0]],
    ids=["none", "one", "unreached", "azure-only", "no-details", "all", "mixed"],
)
def test_pieces_join_to_the_whole_snapshot(servers: list[int]) -> None:
    every = _servers()
    snapshot = Snapshot(
        tool_version="0.1.0",
        collected_at=datetime(2026, 12, 6, tzinfo=UTC),
        servers=tuple(every[i] for i in servers),
    )
    assert b"".join(snapshot.json_pieces()) == _whole(snapshot)
    assert snapshot.to_json_bytes() == _whole(snapshot)
    assert snapshot.to_json() == _whole(snapshot).decode("utf-8")


def test_no_piece_holds_more_than_one_database() -> None:
    server = _servers()[0]
    assert server.postgres is not None
    details = server.postgres.database_details
    snapshot = Snapshot(tool_version="0.1.0", collected_at=datetime.now(UTC), servers=(server,))
    pieces = list(snapshot.json_pieces())
    largest = max(len(b"".join(whole(d, 1))) for d in details)
    # The head holds the roles and memberships; every other piece one database's details
    # (indented a little deeper) or less.
    assert sum(len(p) > largest * 1.5 for p in pieces) == 1
    assert len(pieces) > len(details)


def test_a_list_that_is_not_there_is_refused() -> None:
    snapshot = Snapshot(tool_version="0.1.0", collected_at=datetime.now(UTC), servers=())
    with pytest.raises(AttributeError):
        list(spliced(snapshot, "databases", 1, lambda d: whole(d, 1)))


def test_a_grant_on_a_whole_object_writes_no_column() -> None:
    # Most grants are on whole objects: their JSON stays what it was before column
    # privileges were read (a snapshot of 71,000 grants would grow by 1.7 MB of nulls).
    grant = ObjectGrant(
        schema_name="s", name="t", kind="table", owner="o", grantee="g", privileges=("SELECT",)
    )
    grants = TypeAdapter(ObjectGrant)
    assert "column" not in json.loads(grants.dump_json(grant))
    on_column = dataclasses.replace(grant, column="email")
    assert json.loads(grants.dump_json(on_column))["column"] == "email"
    assert grants.validate_json(grants.dump_json(on_column)) == on_column
