"""The config as the bundle carries it: every password taken out.

A ``dsn`` in pgwarden.toml should be a reference (``env:NAME``, ``keyvault:…``), but a
literal connection string with its password is valid config. The bundle carries the
config twice, neither with a secret: the file as written, each literal connection
string on a ``key = "…"`` line rewritten with ``password=REDACTED``; and the
effective config pgwarden used (``--dsn`` applied) as JSON, redacted the same way.
The file is parsed again after the rewrite; if any password is still in it (a
connection string written in a form a line cannot show, such as a multi-line string),
the file is left out of the bundle and a note says why.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgwarden.model.config import Config

REDACTED = "REDACTED"
# Connection parameters that hold a secret.
SECRET_PARAMETERS = ("password", "sslpassword")
# ``password=entra`` asks for an Entra token at login: a marker, not a password.
ENTRA_MARKER = "entra"
# A reference says where the secret is, not what it is.
REFERENCES = ("env:", "keyvault:")
_URI_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(ssl)?password\s*=")
_KEY_VALUE = re.compile(r"^(\s*[A-Za-z0-9_.\"'-]+\s*=\s*)(.+?)\s*$")


def holds_secret(value: str) -> bool:
    """Whether a config string carries a password (a reference does not)."""
    if value.startswith(REFERENCES):
        return False
    try:
        params = conninfo_to_dict(value)
    except psycopg.Error:
        # Not a connection string libpq can read; it may still be one written wrong.
        return bool(_KEYWORD_PASSWORD.search(value) or _URI_PASSWORD.search(value))
    return any(
        params.get(name) not in (None, "", REDACTED, ENTRA_MARKER) for name in SECRET_PARAMETERS
    )


def redacted_dsn(value: str) -> str:
    """A config string with its passwords replaced by ``REDACTED`` (others unchanged)."""
    if not holds_secret(value):
        return value
    try:
        params = conninfo_to_dict(value)
    except psycopg.Error:
        return f"<{REDACTED}: a connection string pgwarden cannot parse>"
    for name in SECRET_PARAMETERS:
        if params.get(name) not in (None, "", ENTRA_MARKER):
            params[name] = REDACTED
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def redacted_config_text(text: str) -> str | None:
    """The config file with every literal password rewritten, or None if one cannot be.

    Only ``key = value`` lines whose value is a string holding a secret change.
    """
    lines = []
    for line in text.splitlines(keepends=True):
        match = _KEY_VALUE.match(line.rstrip("\r\n"))
        if match is not None:
            value = _single_value(match.group(2))
            if isinstance(value, str) and holds_secret(value):
                ending = line[len(line.rstrip("\r\n")) :]
                line = match.group(1) + json.dumps(redacted_dsn(value), ensure_ascii=False) + ending
        lines.append(line)
    redacted = "".join(lines)
    try:
        parsed = tomllib.loads(redacted)
    except tomllib.TOMLDecodeError:
        return None
    if any(holds_secret(value) for value in _strings(parsed)):
        return None
    return redacted


def effective_config_json(config: Config) -> str:
    """The config pgwarden used, as JSON, every connection string redacted."""
    data = config.model_dump(mode="json")
    return json.dumps(_redact_all(data), indent=2, ensure_ascii=False) + "\n"


def _single_value(text: str) -> object:
    try:
        return tomllib.loads(f"v = {text}").get("v")
    except tomllib.TOMLDecodeError:
        return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _redact_all(value: Any) -> Any:
    if isinstance(value, str):
        return redacted_dsn(value)
    if isinstance(value, dict):
        return {key: _redact_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_all(item) for item in value]
    return value
