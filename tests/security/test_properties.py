"""Property-based tests: parsers meet arbitrary input with a result or one clear error."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from pgwarden.collect.dsn import check_dsn_source
from pgwarden.collect.endpoint import endpoint_of
from pgwarden.model.config import load_config, parse_config
from pgwarden.model.errors import ConfigError

names = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(user=names, password=names, host=hosts, database=names, port=st.integers(1, 65535))
@example(user="0", password="port", host="a", database="0", port=1)  # spells a field name
@example(user="%00", password="0", host="a", database="0", port=1)  # decoded once, not twice
def test_uri_dsn_round_trips_without_the_password(
    user: str, password: str, host: str, database: str, port: int
) -> None:
    uri = (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
        f"{quote(database, safe='')}?sslmode=verify-full"
    )
    endpoint = endpoint_of(check_dsn_source(uri, "dsn", {}) or "", {})
    assert (endpoint.user, endpoint.host, endpoint.port, endpoint.database) == (
        user,
        host,
        port,
        database,
    )
    assert endpoint.sslmode == "verify-full"
    # Every value written (the field names, "port" or "host", are the model's own, and
    # a generated password may spell one), unless the password is also a legitimate part.
    written = [str(value) for value in endpoint.model_dump(mode="json").values()]
    legitimate = (user, host, database, str(port), "verify-full")
    if len(password) >= 4 and not any(password in field for field in legitimate):
        assert not any(password in value for value in written)


@PROPERTY
@given(user=names, password=names, database=names)
def test_key_value_dsn_round_trips(user: str, password: str, database: str) -> None:
    dsn = make_conninfo(user=user, password=password, dbname=database, host="db.example.com")
    endpoint = endpoint_of(check_dsn_source(dsn, "dsn", {}) or "", {})
    assert (endpoint.user, endpoint.database) == (user, database)


@PROPERTY
@given(text=st.text(max_size=200))
def test_any_dsn_text_is_accepted_or_one_clear_error(text: str) -> None:
    try:
        check_dsn_source(text, "server[0].dsn", {})
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("server[0].dsn: ") and "\n" not in message
        if "password=" in text:
            assert text not in message


toml_values = st.recursive(
    st.none().map(lambda _: "1")
    | st.integers(-(2**40), 2**40).map(str)
    | st.text(max_size=10).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
    | st.booleans().map(lambda b: "true" if b else "false"),
    lambda inner: st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    max_leaves=5,
)
keys = st.sampled_from(
    ["name", "dsn", "fail_on", "databases", "roles", "admin_role", "secret", "bogus", "expires"]
)
tables = st.sampled_from(
    ["[policy]", "[[server]]", "[[server.app]]", "[azure]", "[policy.severity]"]
)


@PROPERTY
@given(
    blocks=st.lists(
        st.tuples(tables, st.lists(st.tuples(keys, toml_values), max_size=4)), max_size=5
    )
)
def test_any_config_loads_or_gives_one_clear_line(
    blocks: list[tuple[str, list[tuple[str, str]]]],
) -> None:
    text = "\n".join(
        header + "\n" + "\n".join(f"{key} = {value}" for key, value in entries)
        for header, entries in blocks
    )
    try:
        parse_config(text, "fuzz.toml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.toml: ")
        assert "\n" not in message


@PROPERTY
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_a_traceback(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.toml"
        path.write_bytes(raw)
        try:
            load_config(path)
        except ConfigError as exc:
            assert str(exc).startswith(f"{path}: ")
            assert "\n" not in str(exc)
