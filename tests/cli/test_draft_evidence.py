"""Name similarity, as ``pgwarden init`` weighs it, and the index that finds similar names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgwarden.cli.draft_evidence import name_affinity, related_names


@pytest.mark.parametrize(
    ("role", "database", "affinity"),
    [
        ("secairadar_app", "secairadar", 1.0),
        ("ctxeco_app", "ctxEco", 1.0),
        ("secai_radar_api", "secairadar", 1.0),
        ("zep_app", "zep", 1.0),
        ("crm_writer", "crm_prod", 1.0),
        ("temporal_app", "temporal_visibility", 0.5),
        ("secai_radar_ingest", "secairadar", 0.5),
        ("shop", "shop2", 0.5),  # "shop2" is the words "shop" and "2"
        ("tenant1_app", "tenant10", 0.0),
        ("tenant0001_app", "tenant0002", 0.0),
        ("svc1", "db1", 0.0),  # digits and generic words are no name
        ("svc_1", "db_1", 0.0),
        # A generic word with a number is an identifier: "app000", not "app" and "000".
        ("app000_svc", "app000_db0003", 0.5),
        ("app1_svc", "app1", 1.0),
        ("db1_owner", "db1", 1.0),
        ("app000_svc", "app001_db0003", 0.0),
        ("app1_svc", "app10_db", 0.0),
        ("app_user", "app_db", 0.0),
        ("ab_app", "ab_extra", 0.0),  # two letters lead nothing
        ("zep_app", "ctxEco", 0.0),
    ],
)
def test_name_affinity(role: str, database: str, affinity: float) -> None:
    assert name_affinity(role, database) == affinity


WORDS = st.sampled_from(
    ["temporal", "visibility", "zep", "app", "db", "1", "10", "ab", "radar", "app1", "db10"]
)
NAMES = st.lists(WORDS, min_size=1, max_size=4).map("_".join)


@given(st.lists(NAMES, min_size=1, max_size=12, unique=True), NAMES)
def test_related_names_finds_every_similar_name(databases: list[str], role: str) -> None:
    """The index never misses a name ``name_affinity`` would relate (it only saves
    comparing every pair)."""
    similar = {db for db in databases if name_affinity(role, db) > 0}
    assert similar <= set(related_names(databases)(role))
