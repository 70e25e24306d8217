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


def read_input(path: Path) -> str:
    """The text of a file the user named (snapshot, results, waivers, baseline).

    Every way it can be unreadable is one ConfigError line naming the file.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
