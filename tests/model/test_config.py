"""Config loading: every problem is one line naming the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.collect.dsn import resolve_dsn
from pgwarden.collect.endpoint import endpoint_of
from pgwarden.model.config import block_locations, load_config, parse_config
from pgwarden.model.errors import ConfigError

GOOD = """\
[policy]
fail_on = "medium"
admin_application_names = ["psql"]

[policy.severity]
PGW-MAP-001 = "medium"

[[server]]
name = "ctxeco-db"
dsn = "env:PGWARDEN_DSN"
admin_role = "ctxecoadmin"

[[server.app]]
name = "secai-radar"
databases = ["secairadar"]
roles = ["secairadar_app"]
secret = "keyvault:secai-radar-kv/database-url"

[[server.app]]
name = 'temporal'
databases = ["temporal", "temporal_visibility"]
"""


def test_good_config_loads_with_block_lines() -> None:
    config = parse_config(GOOD, "pgwarden.toml")
    assert config.policy.fail_on == "medium"
    assert config.policy.severity == {"PGW-MAP-001": "medium"}
    assert config.policy.scram_key_reuse  # on unless switched off
    server = config.server[0]
    assert server.app_of_database("temporal_visibility") is server.app[1]
    assert config.locations == {
        "server/ctxeco-db": 8,
        "app/ctxeco-db/secai-radar": 13,
        "app/ctxeco-db/temporal": 19,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[policy\nfail_on = 1", "pgwarden.toml: not valid TOML"),
        ('[policy]\nfail_on = "sometimes"', "pgwarden.toml: policy.fail_on: Input should be"),
        ("[policy]\nfial_on = 'high'", "pgwarden.toml: policy.fial_on: unknown key"),
        ('[[server]]\nname = "a"\nport = 5', "pgwarden.toml: server[name='a'].port: unknown key"),
        ("[[server]]\ndsn = 'x'", "pgwarden.toml: server[0].name: required key is missing"),
        (
            '[[server]]\nname = "a"\n[[server.app]]\nname = "x"\nconnection_budget = "lots"',
            "pgwarden.toml: server[name='a'].app[name='x'].connection_budget:",
        ),
        (
            '[[server]]\nname = "a"\n[[server.app]]\nname = "x"\nsecret = "vault/secret"',
            "secret: must be 'keyvault:VAULT/SECRET'",
        ),
        (
            '[[server]]\nname = "a"\n[[server.app]]\nname = "x"\ndatabases = ["d"]\n'
            '[[server.app]]\nname = "y"\ndatabases = ["d"]',
            "database 'd' belongs to both 'x' and 'y'",
        ),
        ('[[server]]\nname = "a"\n[[server]]\nname = "a"', "server 'a' is named twice"),
        ("[policy.severity]\nISO = 'high'", "'ISO' is not a rule id"),
        ("[policy]\nmax_firewall_prefix = 40", "policy.max_firewall_prefix:"),
        ("[policy]\nscram_key_reuse = 'sometimes'", "policy.scram_key_reuse: Input should be"),
        ("[report]\nrule_docs_url = 'docs/{rule_id}.md'", "report.rule_docs_url: must be an"),
        (
            "[report]\nrule_docs_url = 'javascript:alert(1)//{rule_id}'",
            "report.rule_docs_url: must be an http(s):// URL",
        ),
        (
            "[report]\nrule_docs_url = 'https://example.com/rules/'",
            "report.rule_docs_url: must contain {rule_id}",
        ),
    ],
)
def test_bad_config_is_one_clear_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "pgwarden.toml")
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[policy]\nfail_on = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


def test_block_locations_ignore_other_tables() -> None:
    text = '[[server]]\n[server.azure]\nname = "not-a-server"\n[[server]]\nname = "b"\n'
    assert block_locations(text) == {"server/b": 4}


def test_dsn_sources_never_echo_the_dsn() -> None:
    env = {"GOOD": "postgresql://u%40x:s3cret@db.example.com:6432/app?sslmode=require"}
    assert resolve_dsn("env:GOOD", "k", env) == env["GOOD"]
    endpoint = endpoint_of(env["GOOD"], {})
    assert (endpoint.user, endpoint.host, endpoint.port, endpoint.database, endpoint.sslmode) == (
        "u@x",
        "db.example.com",
        6432,
        "app",
        "require",
    )
    assert "s3cret" not in endpoint.model_dump_json()
    with pytest.raises(ConfigError, match="environment variable MISSING is not set"):
        resolve_dsn("env:MISSING", "server[0].dsn", env)
    with pytest.raises(ConfigError) as info:
        resolve_dsn("host=x password=s3cret port=notaport extra", "server[0].dsn", env)
    assert "s3cret" not in str(info.value)


def test_libpq_environment_is_the_default_source() -> None:
    assert resolve_dsn(None, "dsn", {}) == ""
    endpoint = endpoint_of("", {"PGHOST": "h", "PGUSER": "auditor", "PGPORT": "5433"})
    assert (endpoint.host, endpoint.user, endpoint.port, endpoint.database) == (
        "h",
        "auditor",
        5433,
        "auditor",
    )


def test_every_database_claimed_twice_is_named_or_counted() -> None:
    databases = ", ".join(f'"d{n}"' for n in range(50))
    apps = "".join(
        f'[[server.app]]\nname = "{app}"\ndatabases = [{databases}]\n' for app in ("x", "y")
    )
    with pytest.raises(ConfigError) as info:
        parse_config(f'[[server]]\nname = "a"\n{apps}', "pgwarden.toml")
    message = str(info.value)
    assert "database 'd0' belongs to both 'x' and 'y'" in message
    assert "database 'd2' belongs to both 'x' and 'y'" in message
    assert "and 47 more like these" in message
    assert "\n" not in message
