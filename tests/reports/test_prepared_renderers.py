"""Renderers prepared on a background thread while a scan waits on its servers."""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
import textwrap

import pytest

from pgwarden.reports import registry
from pgwarden.reports.registry import RENDERERS, prepared_in_background


def _fresh_python(code: str) -> str:
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return run.stdout.strip()


def test_the_html_template_is_compiled_before_the_first_render() -> None:
    """In a new process: Jinja loaded, report.html compiled and cached, thread gone."""
    out = _fresh_python(
        """
        import sys, threading
        from pgwarden.reports.registry import prepared_in_background
        before = "jinja2" in sys.modules
        with prepared_in_background(["json", "html"]):
            pass
        from pgwarden.reports.templating import _environment
        cached = [key[1] for key in _environment("html").cache]
        print(before, "jinja2" in sys.modules, cached, threading.active_count())
        """
    )
    assert out == "False True ['report.html'] 1"


def test_nothing_is_prepared_for_formats_not_written() -> None:
    out = _fresh_python(
        """
        import sys
        from pgwarden.reports.registry import prepared_in_background
        with prepared_in_background(["json"]):
            pass
        print("jinja2" in sys.modules, "pgwarden.reports.json" in sys.modules)
        """
    )
    assert out == "False True"


def test_a_renderer_wrapped_to_time_it_is_still_prepared(monkeypatch: pytest.MonkeyPatch) -> None:
    prepared: list[str] = []
    original, default = RENDERERS["markdown"]
    assert isinstance(original, registry._OnFirstUse)
    monkeypatch.setattr(
        registry._OnFirstUse, "prepare", lambda self: prepared.append(self.function)
    )
    timed = functools.wraps(original)(lambda results: original(results))
    monkeypatch.setitem(RENDERERS, "markdown", (timed, default))
    with prepared_in_background(["markdown"]):
        pass
    assert prepared == ["render_markdown"]


def test_a_failing_preparation_is_left_to_the_render(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Preparing is only a head start: its error surfaces when the report is rendered."""
    broken = registry._OnFirstUse("pgwarden.reports.no_such_format", "render_nothing")
    monkeypatch.setitem(RENDERERS, "markdown", (broken, "summary.md"))
    with (
        caplog.at_level(logging.DEBUG, logger="pgwarden.reports.registry"),
        prepared_in_background(["markdown"]),
    ):
        pass
    assert "preparing the render_nothing renderer failed" in caplog.text
    with pytest.raises(ModuleNotFoundError):
        broken(None)  # type: ignore[arg-type]
