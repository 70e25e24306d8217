"""The output formats the CLI offers: option name → renderer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib import import_module

from pgwarden.reports.base import Renderer
from pgwarden.scanner.results import Results


class _OnFirstUse:
    """A renderer whose module is imported when it first renders.

    Jinja, the XML writer and the rest load only for the formats a run writes: starting
    ``pgwarden`` costs less, and most scans write one or two formats.
    """

    def __init__(self, module: str, function: str) -> None:
        self.module = module
        self.function = function
        self.__name__ = function

    def __call__(self, results: Results) -> str | bytes:
        renderer: Renderer = getattr(import_module(self.module), self.function)
        return renderer(results)

    def prepare(self) -> None:
        """Import the module and let it do its one-time work (a template to compile)."""
        ready: Callable[[], None] | None = getattr(import_module(self.module), "prepare", None)
        if ready is not None:
            ready()


# Order is the order of the CLI options and of the demo's output files.
RENDERERS: dict[str, tuple[Renderer, str]] = {
    "json": (_OnFirstUse("pgwarden.reports.json", "render_json"), "results.json"),
    "sarif": (_OnFirstUse("pgwarden.reports.sarif", "render_sarif"), "results.sarif"),
    "html": (_OnFirstUse("pgwarden.reports.html", "render_html"), "report.html"),
    "junit": (_OnFirstUse("pgwarden.reports.junit", "render_junit"), "junit.xml"),
    "markdown": (_OnFirstUse("pgwarden.reports.markdown", "render_markdown"), "summary.md"),
}


log = logging.getLogger(__name__)


@contextmanager
def prepared_in_background(names: Iterable[str]) -> Iterator[None]:
    """Prepare the renderers ``names`` on a background thread while the block runs.

    A scan spends most of its time waiting on servers; importing Jinja and compiling
    the HTML template meanwhile takes them off the time between the last server and
    the written report. Waits for the thread on leaving. A failure here is only
    logged: rendering does the same work again and reports it properly.
    """
    preparers = []
    for name in names:
        renderer: object = RENDERERS[name][0]
        while hasattr(renderer, "__wrapped__"):  # a renderer wrapped to time it
            renderer = renderer.__wrapped__
        if isinstance(renderer, _OnFirstUse):
            preparers.append(renderer)

    def prepare_all() -> None:
        for renderer in preparers:
            try:
                renderer.prepare()
            except Exception as exc:  # the render does it again and reports it
                log.debug("preparing the %s renderer failed: %s", renderer.function, exc)

    thread = threading.Thread(target=prepare_all, name="pgwarden-prepare", daemon=True)
    if preparers:
        thread.start()
    try:
        yield
    finally:
        if preparers:
            thread.join()
