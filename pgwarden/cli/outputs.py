"""Writing what a command produces: atomic files or stdout, and the rendered reports."""

from __future__ import annotations

import sys
from pathlib import Path

from pgwarden.model.errors import UsageError
from pgwarden.model.results import Results
from pgwarden.reports.registry import RENDERERS


def write_output(path: str, content: str | bytes) -> None:
    """Write an output atomically (``-`` is stdout), so no half file looks complete.

    A regular file is written beside its target and renamed over it; through a symlink,
    the file it points to is replaced and the link kept. Anything else that exists (a
    device such as ``/dev/null``, a FIFO) is written into, never replaced.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        if target.exists() and not target.is_file():
            with target.open("wb") as stream:
                stream.write(data)
            return
        target = target.resolve() if target.is_symlink() else target
        tmp = target.with_name(f".{target.name}.pgwarden-tmp")
        try:
            tmp.write_bytes(data)
            tmp.replace(target)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def render_outputs(results: Results, outputs: dict[str, str | None]) -> bool:
    """Render the results in each format given a path; whether anything was written."""
    wrote = False
    for name, path in outputs.items():
        if path is None:
            continue
        renderer, _default = RENDERERS[name]
        write_output(path, renderer(results))
        wrote = True
    return wrote
