"""Errors that reach the user as one clear line and a documented exit code."""

from __future__ import annotations

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
