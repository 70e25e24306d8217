"""The config as the bundle carries it: references kept, every password redacted."""

from __future__ import annotations

import pytest

from pgwarden.evidence.redaction import (
    holds_secret,
    redacted_config_text,
    redacted_dsn,
)


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://admin:s3cret@db.example.com/postgres",
        "postgres://admin:p%40ss@db/postgres?sslmode=require",
        "host=db user=admin password=s3cret dbname=postgres",
        "host=db user=admin password='with space' dbname=postgres",
        "host=db sslpassword=keypass sslkey=/k.pem",
        "host=db password='unterminated",
    ],
)
def test_passwords_are_found_and_redacted(value: str) -> None:
    assert holds_secret(value)
    redacted = redacted_dsn(value)
    assert not holds_secret(redacted)
    for secret in ("s3cret", "p%40ss", "p@ss", "with space", "keypass", "unterminated"):
        assert secret not in redacted


@pytest.mark.parametrize(
    "value",
    [
        "env:PGWARDEN_DSN",
        "keyvault:secai-radar-kv/database-url",
        "host=db user=me dbname=postgres sslmode=verify-full",
        "host=db user=me@tenant password=entra",
        "postgresql://me@db/postgres",
        "password-vault",
        "ctxeco-db",
    ],
)
def test_references_and_secret_free_values_are_kept(value: str) -> None:
    assert not holds_secret(value)
    assert redacted_dsn(value) == value


def test_the_config_file_keeps_its_shape_and_loses_its_passwords() -> None:
    text = (
        "# the shared server\n"
        "[[server]]\n"
        'name = "ctxeco-db"\n'
        "dsn = 'host=db user=admin password=s3cret'\r\n"
        'admin_role = "ctxecoadmin"\n'
        "[[server]]\n"
        'name = "legacy"\n'
        'dsn = "env:LEGACY"\n'
    )
    redacted = redacted_config_text(text)
    assert redacted is not None
    assert "s3cret" not in redacted
    lines = redacted.splitlines(keepends=True)
    assert lines[0] == "# the shared server\n"
    assert lines[3] == 'dsn = "user=admin password=REDACTED host=db"\r\n'
    assert lines[4:] == text.splitlines(keepends=True)[4:]


def test_a_password_a_line_cannot_show_leaves_the_file_out() -> None:
    text = '[[server]]\nname = "db"\ndsn = """host=db\npassword=s3cret"""\n'
    assert redacted_config_text(text) is None
