"""The access matrix of one server: who (PUBLIC and each app) reaches which database.

Only the pairs the results describe are stored; every other cell of the grid is
derived when it is shown. A server of 1,000 databases and 100 apps therefore costs
its few thousand access cells, not 100,000 grid cells: the HTML report draws the whole
grid only for small servers, and hands larger ones to its script as compact JSON
(``compact``), with the exposed databases listed as static HTML (``exposures``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pgwarden.model.results import AccessCell, ServerSummary

PUBLIC = "PUBLIC"
# How a principal reaches a database: the cell's label and the words that explain it.
# The order numbers the kinds in ``compact``; report.js reads the same table.
ACCESS_KINDS: dict[str, tuple[str, str]] = {
    "own": ("own", "its own database"),
    "public": ("via PUBLIC", "through PUBLIC's CONNECT privilege"),
    "grant": ("via grant", "through a direct CONNECT grant"),
    "membership": ("via membership", "through membership in a role that may connect"),
}
_KIND_INDEX = {kind: index for index, kind in enumerate(ACCESS_KINDS)}


@dataclass(frozen=True)
class MatrixCell:
    """How one principal reaches one database (``kind`` ``none``: it cannot)."""

    kind: str
    label: str
    violation: bool
    explanation: str


@dataclass(frozen=True)
class Exposure:
    """A database another app or PUBLIC can reach, with each principal that does."""

    database: str
    owner: str | None
    reached_by: tuple[tuple[str, MatrixCell], ...]


@dataclass(frozen=True)
class AccessMatrix:
    """Apps (and PUBLIC) by app databases of one server.

    ``cells`` holds the access cells of the results by (row, column): row an index
    into ``principals`` (PUBLIC first), column an index into ``databases``.
    """

    server: str
    databases: tuple[tuple[str, str | None], ...]
    principals: tuple[str, ...]
    cells: Mapping[tuple[int, int], AccessCell]
    exposed: tuple[str, ...]

    @property
    def size(self) -> int:
        """How many cells the whole grid has."""
        return len(self.principals) * len(self.databases)

    def cell(self, row: int, column: int) -> MatrixCell:
        """How ``principals[row]`` reaches ``databases[column]``.

        PUBLIC's CONNECT reaches every role, so a principal with no access of its own
        to a database PUBLIC may connect to reaches it "via PUBLIC" (report.js derives
        the cells it draws the same way).
        """
        principal, database = self.principals[row], self.databases[column][0]
        cell = self.cells.get((row, column))
        if cell is None and principal != PUBLIC and self.principals[:1] == (PUBLIC,):
            cell = self.cells.get((0, column))
        if cell is None:
            return MatrixCell("none", "—", False, f"{principal} cannot connect to {database}")
        label, how = ACCESS_KINDS[cell.via]
        flag = " (violation)" if cell.violation else ""
        return MatrixCell(
            cell.via,
            "CONNECT" if principal == PUBLIC else label,
            cell.violation,
            f"{principal} → {database}: {how}{flag}",
        )

    @property
    def rows(self) -> tuple[tuple[str, tuple[MatrixCell, ...]], ...]:
        """Every cell of the grid, row by row: for servers small enough to show whole."""
        columns = range(len(self.databases))
        return tuple(
            (principal, tuple(self.cell(row, column) for column in columns))
            for row, principal in enumerate(self.principals)
        )

    def exposures(self) -> tuple[Exposure, ...]:
        """The exposed databases in column order, each with its violating cells.

        Only the principals the results name are listed: an app reaching a database
        only through PUBLIC is covered by PUBLIC's own entry.
        """
        violating: dict[int, list[int]] = {}
        for row, column in sorted(self.cells, key=lambda key: (key[1], key[0])):
            if self.cells[(row, column)].violation:
                violating.setdefault(column, []).append(row)
        return tuple(
            Exposure(
                self.databases[column][0],
                self.databases[column][1],
                tuple((self.principals[row], self.cell(row, column)) for row in rows),
            )
            for column, rows in violating.items()
        )

    def compact(self) -> dict[str, Any]:
        """The matrix as JSON for report.js: names once, one small code per access cell.

        ``databases`` holds ``[name, owner app or null, exposed]``; ``cells`` holds one
        flat list per principal, ``column, code`` pairs, where ``code`` is twice the
        kind's index in ``ACCESS_KINDS``, plus one for a violation. Pairs not listed
        are derived as ``cell`` says.
        """
        exposed = set(self.exposed)
        rows: list[list[int]] = [[] for _ in self.principals]
        for (row, column), cell in sorted(self.cells.items()):
            rows[row] += (column, 2 * _KIND_INDEX[cell.via] + cell.violation)
        return {
            "server": self.server,
            "databases": [[name, owner, name in exposed] for name, owner in self.databases],
            "principals": self.principals,
            "cells": rows,
        }


def server_access_matrix(server: ServerSummary) -> AccessMatrix:
    """The access cells of one server as a grid: rows PUBLIC then apps, columns databases."""
    databases: dict[str, str | None] = {}
    principals: dict[str, None] = {}
    for cell in server.access:
        databases.setdefault(cell.database, cell.app)
        if cell.app is not None and cell.principal != PUBLIC:
            principals.setdefault(cell.app, None)
        principals.setdefault(cell.principal, None)
    order = tuple(sorted(principals, key=lambda principal: principal != PUBLIC))
    row_of = {principal: row for row, principal in enumerate(order)}
    column_of = {database: column for column, database in enumerate(databases)}
    cells = {(row_of[c.principal], column_of[c.database]): c for c in server.access}
    violated = {cell.database for cell in server.access if cell.violation}
    exposed = tuple(db for db in databases if db in violated)
    return AccessMatrix(server.name, tuple(databases.items()), order, cells, exposed)
