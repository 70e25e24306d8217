"""Holding off Python's cyclic garbage collector while big acyclic data is built."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector; reference counting frees as before.

    Evaluating a big server or rendering its reports builds hundreds of thousands of
    small acyclic containers (the role graph's caches, findings' evidence, report rows)
    next to a snapshot as big. Every full collection on the way walks them all and
    frees nothing: at 1,000 databases and 10,000 roles that was a quarter to a third of
    the evaluation, and about half the rendering of 50,000 findings. The collector
    resumes as it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def without_cycle_collection() -> None:
    """Turn the cyclic garbage collector off for the rest of a pgwarden process.

    For the ``pgwarden`` command itself, which runs one pipeline and ends (``cli.leave``)
    without freeing its heap. Reference counting frees everything as before; what the
    collector would add is full walks of the growing snapshot while the databases are
    read, each holding the interpreter lock that every collection thread needs: at
    1,000 databases and 10,000 roles about 580 collections and 0.45 s of CPU, for about
    600 objects of cyclic garbage in the whole run. Not for library callers, whose
    processes live on: they keep the collector, paused only around the big builds
    (``collector_paused``).
    """
    gc.disable()
