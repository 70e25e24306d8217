"""The output formats the CLI offers: option name → renderer (and, where a format can be
written a piece at a time, the streaming renderer a file is written with)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from importlib import import_module
from typing import Generic, TypeVar

from pgwarden.model.results import Results
from pgwarden.reports.base import Renderer

T = TypeVar("T")


class _OnFirstUse(Generic[T]):
    """A renderer (or streaming renderer) whose module is imported when it first runs.

    Jinja, the XML writer and the rest load only for the formats a run writes: starting
    ``pgwarden`` costs less, and most scans write one or two formats.
    """

    def __init__(self, module: str, function: str) -> None:
        self.module = module
        self.function = function
        self.__name__ = function

    def __call__(self, results: Results) -> T:
        render: Callable[[Results], T] = getattr(import_module(self.module), self.function)
        return render(results)


# Order is the order of the CLI options and of the demo's output files.
RENDERERS: dict[str, tuple[Renderer, str]] = {
    "json": (_OnFirstUse("pgwarden.reports.json", "render_json"), "results.json"),
    "sarif": (_OnFirstUse("pgwarden.reports.sarif", "render_sarif"), "results.sarif"),
    "html": (_OnFirstUse("pgwarden.reports.html", "render_html"), "report.html"),
    "junit": (_OnFirstUse("pgwarden.reports.junit", "render_junit"), "junit.xml"),
    "markdown": (_OnFirstUse("pgwarden.reports.markdown", "render_markdown"), "summary.md"),
    "csv": (_OnFirstUse("pgwarden.reports.csv_table", "render_csv"), "results.csv"),
}


# Formats written a piece at a time: the results JSON (or CSV) of a big server is tens
# of megabytes that a file never needs whole in memory.
STREAMERS: dict[str, Callable[[Results], Iterator[bytes]]] = {
    "json": _OnFirstUse("pgwarden.reports.json", "stream_json"),
    "csv": _OnFirstUse("pgwarden.reports.csv_table", "stream_csv"),
}


def render(name: str, results: Results) -> str | bytes | Iterator[bytes]:
    """The format ``name`` of ``results``: a piece at a time where the format can be
    (``STREAMERS``), else whole, rendered now (a renderer's error is raised here)."""
    streamer = STREAMERS.get(name)
    return streamer(results) if streamer is not None else RENDERERS[name][0](results)


def pieces(content: str | bytes | Iterable[bytes]) -> Iterable[bytes]:
    """``content`` as UTF-8 bytes, a piece at a time (whole content is one piece)."""
    if isinstance(content, str):
        return (content.encode("utf-8"),)
    if isinstance(content, bytes):
        return (content,)
    return content
