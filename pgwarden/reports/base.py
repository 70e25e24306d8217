"""The renderer seam: ``render(results) -> str | bytes``; the CLI opens the files."""

from __future__ import annotations

from typing import Protocol

from pgwarden.model.errors import PgwardenError
from pgwarden.model.results import Results


class RenderError(PgwardenError):
    """A report could not be rendered from the results."""


class Renderer(Protocol):
    """Turns a Results document into one report format."""

    def __call__(self, results: Results) -> str | bytes:
        """Render; must not decide what failed, only show it."""
        ...
