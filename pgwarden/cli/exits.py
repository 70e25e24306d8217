"""How a command ends on a known error: one line on stderr and its documented exit code.

Exit codes: 0 clean, 1 violations, 2 usage or config error, 3 incomplete scan; 130 when
interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from pgwarden.model.errors import PgwardenError


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Known errors become one line and their exit code; nothing else is swallowed."""
    try:
        yield
    except PgwardenError as exc:
        click.echo(f"pgwarden: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        interrupted()


def interrupted() -> NoReturn:
    """Ctrl-C: one line, and exit 130 (nothing half-written is left: writers replace
    their files only once complete)."""
    click.echo("pgwarden: interrupted; no results were written", err=True)
    sys.exit(130)
