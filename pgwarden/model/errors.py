"""Errors that reach the user as one clear line and a documented exit code."""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3


class PgwardenError(Exception):
    """An error the CLI prints as one line; ``exit_code`` is what the process returns."""

    exit_code = EXIT_USAGE


class ConfigError(PgwardenError):
    """The config, a snapshot, a waiver or another input file is unusable."""


class UsageError(PgwardenError):
    """The command line asks for something that cannot be done."""


class ConnectError(PgwardenError):
    """A server could not be reached or refused the login."""


class EnvironmentNotReady(PgwardenError):
    """This machine lacks something a command needs (e.g. PostgreSQL binaries)."""


# Inputs larger than these are refused before they are read: a config or waiver file
# is small, a snapshot or results document of a large fleet is not.
TOML_LIMIT_BYTES = 8 * 1024 * 1024
JSON_LIMIT_BYTES = 1024 * 1024 * 1024


def read_input(path: Path, limit: int = JSON_LIMIT_BYTES) -> str:
    """The text of a file the user named (config, snapshot, results, waivers, baseline).

    Every way it can be unreadable is one ConfigError line naming the file.
    """
    try:
        size = path.stat().st_size
        if size > limit:
            raise ConfigError(
                f"{path}: too large ({size / 1048576:.0f} MiB; the limit is "
                f"{limit / 1048576:.0f} MiB)"
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: not UTF-8 (line {line}, byte {exc.start})") from None


class CollectorError(PgwardenError):
    """A collector could not collect at all (e.g. the server refused the login).

    Partial blindness is not an error: it is recorded in the snapshot as a Gap.
    """


def one_line(exc: BaseException) -> str:
    """libpq's multi-line message reduced to its most telling line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    for line in lines:
        for marker in ("FATAL:", "ERROR:"):
            if marker in line:
                return line.split(marker, 1)[1].strip()
    # libpq's "connection failed: connection to server at ... failed: reason" keeps
    # the reason last; drop the prefix that repeats what the caller already says.
    return lines[0].removeprefix("connection failed: ")
