"""The Jinja environments of the text reports, both escaping by default.

Every name in a report (database, role, application, server) comes from a live server
and may hold ``<script>``, quotes, backticks or pipes. Escaping therefore happens on
every ``{{ … }}`` unless a filter marks its output safe on purpose: HTML through
Jinja's autoescape, markdown through ``finalize`` (markdown punctuation backslashed,
HTML characters as entities, line breaks folded) on top of it. In both, characters
that would hide or reorder text are shown by their code point.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, Template
from markupsafe import Markup

# Characters that start inline markdown constructs (code, emphasis, links, tables,
# strikethrough) and the backslash itself.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
# "&" first, so the entities written after it stay entities.
_MARKDOWN_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("@", "&#64;"))
_BACKTICK_RUNS = re.compile(r"`+")
# Characters that print as nothing or turn the text around them (bidirectional
# overrides, zero-width marks, C0 controls): a role name holding one must not look
# like another name, so reports show them as ⟨U+202E⟩.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
# Reserved URI characters that may stay as they are in a markdown link destination
# (parentheses and spaces would end it; they get percent-encoded).
_URI_SAFE = ":/?#[]@!$&'*+,;=%~"


def reveal_invisible(text: str) -> str:
    """``text`` with every invisible or direction-changing character shown as ``⟨U+XXXX⟩``."""
    return _INVISIBLE.sub(lambda match: f"⟨U+{ord(match.group()):04X}⟩", text)


def markdown_inline(value: Any) -> Markup:
    """A value as one line of literal markdown text: nothing in it formats or links.

    ``@`` becomes an entity so a role named after a GitHub team mentions nobody.
    """
    if isinstance(value, Markup):
        return value
    text = reveal_invisible(_LINE_BREAKS.sub(" ", str(value)))
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    # Quotes mean nothing in markdown text, so they stay readable in the raw file.
    for char, entity in _MARKDOWN_ENTITIES:
        text = text.replace(char, entity)
    return Markup(text)  # noqa: S704 - every HTML-significant character is an entity


def markdown_code_block(value: Any) -> Markup:
    """A fenced code block holding ``value`` verbatim (a fence no backtick run can close)."""
    text = str(value).strip("\n")
    longest = max((len(run) for run in _BACKTICK_RUNS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    # Inside a fence markdown shows every character as it is; only the fence could
    # end it early, and no backtick run in the text is as long.
    return Markup(f"{fence}\n{text}\n{fence}")  # noqa: S704


def markdown_link(text: Any, uri: str | None) -> Markup:
    """``[text](uri)``: the text escaped, the URI percent-encoded where markdown would stop.

    Without a URI the text stands alone.
    """
    if uri is None:
        return markdown_inline(text)
    link = f"[{markdown_inline(text)}]({quote(uri, safe=_URI_SAFE)})"
    return Markup(link)  # noqa: S704 - both parts escaped above


def _markdown_finalize(value: Any) -> Any:
    return markdown_inline(value) if isinstance(value, str) else value


def _html_finalize(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return reveal_invisible(value)
    return value


@cache
def _environment(kind: str) -> Environment:
    """One environment per output kind: ``html`` or ``markdown`` (its own escaping on top)."""
    environment = Environment(
        loader=PackageLoader("pgwarden.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_markdown_finalize if kind == "markdown" else _html_finalize,
        # The optimizer only folds constant expressions, which our templates do not
        # have (the code generated without it is the same), yet it cost a fifth of
        # compiling report.html, a cost every run pays.
        optimized=False,
    )
    if kind == "markdown":
        environment.filters["code_block"] = markdown_code_block
        environment.filters["link"] = markdown_link
    return environment


def html_template(name: str) -> Template:
    """An HTML template from ``reports/templates`` (autoescaped)."""
    return _environment("html").get_template(name)


def markdown_template(name: str) -> Template:
    """A markdown template from ``reports/templates`` (markdown- and HTML-escaped)."""
    return _environment("markdown").get_template(name)


@cache
def static_asset(name: str) -> Markup:
    """A stylesheet or script shipped beside the templates, to inline verbatim.

    Read as plain text, not as a template: JavaScript braces must not be parsed
    as Jinja, and the file is ours, not data.
    """
    text = resources.files("pgwarden.reports").joinpath("templates", name).read_text("utf-8")
    if "</" in text:  # would end the inline <style>/<script> element early
        raise ValueError(f"templates/{name}: must not contain '</'")
    return Markup(text)  # noqa: S704 - our own file, checked above
