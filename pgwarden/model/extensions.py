"""What was installed into a database: extensions and untrusted procedural languages."""

from __future__ import annotations

from pgwarden.model.frozen import Frozen


class Extension(Frozen):
    """An extension created in a database (``pg_extension``; plpgsql, built in, is not)."""

    name: str
    version: str
    owner: str
    schema_name: str | None = None


class ProceduralLanguage(Frozen):
    """An untrusted procedural language (``lanpltrusted = false``): plpython3u, plperlu, ...

    Functions in it run unchecked code as the server's operating-system user; only
    superusers may create them.
    """

    name: str
    owner: str
