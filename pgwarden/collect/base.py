"""The collector seam: one method that turns a configured server into snapshot data."""

from __future__ import annotations

from typing import Protocol, TypeVar

from pgwarden.model.errors import PgwardenError

T_co = TypeVar("T_co", covariant=True)


class CollectorError(PgwardenError):
    """A collector could not collect at all (e.g. the server refused the login).

    Partial blindness is not an error: it is recorded in the snapshot as a Gap.
    """


class Collector(Protocol[T_co]):
    """Reads one source of truth for one server and returns plain snapshot data."""

    def collect(self) -> T_co:
        """Collect; raise CollectorError only when nothing could be collected."""
        ...
