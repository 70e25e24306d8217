"""Where a DSN points, as secret-free data."""

from __future__ import annotations

from pgwarden.model.frozen import Frozen


class Endpoint(Frozen):
    """Where a DSN points, with every secret dropped."""

    user: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    sslmode: str | None = None
