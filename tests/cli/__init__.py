"""Run the ``pgwarden`` command as a user would: a separate process, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_pgwarden(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """``pgwarden ARGS`` with this environment plus ``env``; never raises on exit codes."""
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
