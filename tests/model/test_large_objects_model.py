"""The snapshot's large objects: what the collector asks for matches what a finding lists,
and a snapshot whose large objects do not add up is one clear line, not a crash later."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pgwarden.cli.inputs import read_snapshot
from pgwarden.collect.postgres import queries as q
from pgwarden.model.errors import ConfigError
from pgwarden.model.evidence import MAX_LISTED
from tests.perf.shapes import unmapped_logins_snapshot


def test_the_collector_reads_as_many_oids_as_a_finding_lists() -> None:
    assert f"(array_agg(oid ORDER BY oid))[1:{MAX_LISTED}]" in q.LARGE_OBJECTS


def _with_large_objects(tmp_path: Path, entry: dict[str, Any]) -> Path:
    data = unmapped_logins_snapshot(2, 2).model_dump(mode="json")
    data["servers"][0]["postgres"]["database_details"][0]["large_objects"] = [entry]
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_large_objects_round_trip_and_are_left_out_when_none(tmp_path: Path) -> None:
    entry = {"owner": "app0000_owner", "count": 40, "oids": list(range(16400, 16420))}
    snapshot = read_snapshot(_with_large_objects(tmp_path, entry))
    pg = snapshot.servers[0].postgres
    assert pg is not None
    [objects] = pg.database_details[0].large_objects
    assert (objects.owner, objects.count, objects.acl) == ("app0000_owner", 40, ())
    assert "large_objects" in pg.database_details[0].model_dump(mode="json")
    assert "large_objects" not in pg.database_details[1].model_dump(mode="json")


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"owner": "a", "count": 0, "oids": [16400]}, "greater than or equal to 1"),
        ({"owner": "a", "count": 1, "oids": []}, "at least 1 item"),
        ({"owner": "a", "count": 2, "oids": [16400, 16401, 16402]}, "lists 3 OIDs of 2"),
        ({"owner": "a", "count": 1, "oids": [-5]}, "greater than or equal to 0"),
    ],
)
def test_large_objects_that_do_not_add_up_are_refused(
    tmp_path: Path, entry: dict[str, Any], said: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        read_snapshot(_with_large_objects(tmp_path, entry))
    message = str(refused.value)
    assert said in message and "large_objects" in message and "\n" not in message
