"""Writing what a command produces: atomic files or stdout, and the rendered reports."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from pgwarden.model.errors import UsageError
from pgwarden.model.results import Results
from pgwarden.reports.registry import pieces, render


def write_output(path: str, content: str | bytes | Iterable[bytes]) -> None:
    """Write an output atomically (``-`` is stdout), so no half file looks complete.

    ``content`` may come a piece at a time (``Iterable[bytes]``): written as it comes,
    it is never whole in memory. A regular file is written beside its target and
    renamed over it; through a symlink, the file it points to is replaced and the link
    kept. Anything else that exists (a device such as ``/dev/null``, a FIFO) is written
    into, never replaced.
    """
    if path == "-":
        sys.stdout.flush()
        for piece in pieces(content):
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        if target.exists() and not target.is_file():
            with target.open("wb") as stream:
                _write_all(stream, pieces(content))
            return
        target = target.resolve() if target.is_symlink() else target
        tmp = target.with_name(f".{target.name}.pgwarden-tmp")
        try:
            # A results file of a big server comes a finding at a time: written through
            # a buffer of 1 MiB, not 8 KiB, it takes a few system calls, not thousands.
            with tmp.open("wb", buffering=_FILE_BUFFER) as stream:
                _write_all(stream, pieces(content))
            tmp.replace(target)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_outputs(named: Mapping[str, str | None]) -> None:
    """Refuse, before anything is scanned or read, outputs that cannot all be written:
    two on stdout (the documents would run into each other), two to one file (the
    last would replace the first), a directory, or a file in a folder that does not
    exist. ``named`` maps each option (``--json``) to its path, or None when not given.
    """
    on_stdout: list[str] = []
    files: dict[str, str] = {}
    for option, path in named.items():
        if path is None:
            continue
        if path == "-":
            on_stdout.append(option)
            if len(on_stdout) > 1:
                raise UsageError(
                    f"{on_stdout[0]} and {option} both write to stdout ('-'): "
                    "one output at most may go there"
                )
            continue
        target = Path(path)
        if target.is_dir():
            raise UsageError(f"cannot write {path}: it is a directory")
        if not target.exists():
            if not target.parent.is_dir():
                raise UsageError(f"cannot write {path}: there is no folder {target.parent}")
        elif not target.is_file():
            continue  # a device such as /dev/null: written into, by any number
        key = os.path.realpath(target)
        if key in files:
            raise UsageError(f"{files[key]} and {option} both write {path}")
        files[key] = option


_FILE_BUFFER = 1 << 20


def _write_all(stream: BinaryIO, chunks: Iterable[bytes]) -> None:
    for piece in chunks:
        stream.write(piece)


def render_outputs(results: Results, outputs: dict[str, str | None]) -> bool:
    """Render the results in each format given a path; whether anything was written.

    A format that can be written a piece at a time (``STREAMERS``) is, so the results
    JSON of a big server never sits whole in memory beside the results.
    A format that cannot be written (a path that cannot be written, a SARIF log too
    large for GitHub) does not cost the others: they are written, then the first
    failure is raised.
    """
    wrote = False
    failed: UsageError | None = None
    for name, path in outputs.items():
        if path is None:
            continue
        try:
            write_output(path, render(name, results))
        except UsageError as exc:
            failed = failed or exc
            continue
        wrote = True
    if failed is not None:
        raise failed
    return wrote
