"""Writing the evidence bundle: one zip of everything an auditor needs from one scan.

``manifest.json`` first, then ``results.json``, ``snapshot.json`` (what was collected,
secret-free by construction: connection strings are kept only as where they point),
every report under ``reports/``, and the config under ``config/``, both the file as
written and the effective config, with every password redacted. The manifest lists
each file with its SHA-256 and size, the pgwarden version, the scan's start and end,
and for each server the PostgreSQL role and the Azure identity pgwarden ran as. With a
signing key, ``manifest.json.sig`` holds a detached Ed25519 signature of the
manifest's bytes.

Entries are written in a fixed order, each stamped with the scan's start time, so
two bundles of one results document differ only in the manifest's ``created_at``.

The files are written one at a time to anonymous temporary files (removed however the
run ends), each hashed as it is written (the results JSON and the CSV a finding at a
time), and then copied into the archive a megabyte at a time: the bundle holds in
memory one report at a time and the compressed archive, not every file at once (at
16,000 findings the files are about 85 MB, the archive 4 MB). The snapshot is written
out as soon as the rules have read it (``SnapshotFile``), so the scan frees it before
the reports are made.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pgwarden import __version__
from pgwarden.evidence.manifest import (
    MANIFEST,
    SIGNATURE,
    BundledFile,
    Manifest,
    ScannedServer,
    ScanRecord,
    SignatureInfo,
)
from pgwarden.evidence.redaction import effective_config_json, redacted_config_text
from pgwarden.evidence.signing import public_key_fingerprint, sign
from pgwarden.model.azure import AzureIdentity
from pgwarden.model.config import Config
from pgwarden.model.errors import UsageError
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from pgwarden.reports.registry import pieces, render
from pgwarden.reports.sarif import TooLargeForGitHub

# Where each report goes, and what it is (the JSON report is results.json itself).
REPORT_FILES: dict[str, tuple[str, str]] = {
    "sarif": ("reports/results.sarif", "SARIF 2.1.0 log"),
    "html": ("reports/report.html", "HTML report"),
    "junit": ("reports/junit.xml", "JUnit XML"),
    "markdown": ("reports/summary.md", "markdown summary"),
    "csv": ("reports/results.csv", "CSV of the findings"),
}
# A zip entry's time cannot be before 1980.
_EARLIEST = datetime(1980, 1, 1, tzinfo=UTC)
# Files are copied into the archive this much at a time.
_CHUNK = 1 << 20


@dataclass
class _File:
    """One file of the bundle, written to an anonymous temporary file and hashed."""

    path: str
    what: str
    staged: IO[bytes]
    sha256: str
    size: int

    @classmethod
    def write(cls, path: str, what: str, chunks: Iterable[bytes]) -> _File:
        digest = hashlib.sha256()
        size = 0
        try:
            staged = tempfile.TemporaryFile(prefix="pgwarden-bundle-")  # noqa: SIM115 - kept
            try:
                for piece in chunks:
                    digest.update(piece)
                    size += len(piece)
                    staged.write(piece)
            except BaseException:
                staged.close()
                raise
        except OSError as exc:
            raise UsageError(
                f"cannot write the evidence bundle's {path} to a temporary file in "
                f"{tempfile.gettempdir()} (set TMPDIR to a folder with room): "
                f"{exc.strerror or exc}"
            ) from None
        return cls(path, what, staged, digest.hexdigest(), size)


@dataclass
class SnapshotFile:
    """A snapshot written for the bundle, so the snapshot itself can be freed: its JSON
    and, for the manifest, the Azure identity each server was read as."""

    file: _File
    identities: dict[str, AzureIdentity | None]

    @classmethod
    def of(cls, snapshot: Snapshot) -> SnapshotFile:
        return cls(
            _File.write("snapshot.json", "collected snapshot", snapshot.json_pieces()),
            {s.name: s.azure.identity for s in snapshot.servers if s.azure is not None},
        )


@dataclass
class BundleInput:
    """What one scan hands to the bundle."""

    results: Results
    config: Config
    snapshot: SnapshotFile | None = None
    config_text: str | None = None
    signing_key: Ed25519PrivateKey | None = None
    notes: list[str] = field(default_factory=list)


def build_bundle(source: BundleInput) -> bytes:
    """The evidence bundle of one scan, as the bytes of a zip archive."""
    files: list[_File] = []
    try:
        return _build(source, files)
    finally:
        for file in files:
            file.staged.close()


def _build(source: BundleInput, files: list[_File]) -> bytes:
    results = source.results
    notes = list(source.notes)

    def add(path: str, what: str, chunks: Iterable[bytes]) -> None:
        files.append(_File.write(path, what, chunks))

    add("results.json", "results (pgwarden JSON)", pieces(render("json", results)))
    if source.snapshot is not None:
        files.append(source.snapshot.file)
    else:
        notes.append("no snapshot: the results were not produced by this run's collection")
    for name, (path, what) in REPORT_FILES.items():
        try:
            add(path, what, pieces(render(name, results)))
        except TooLargeForGitHub as exc:
            # A SARIF log GitHub would refuse is not written (see reports.sarif); the
            # bundle keeps every other file and says why this one is missing.
            notes.append(f"{path} left out: {exc}")
    if source.config_text is not None:
        redacted = redacted_config_text(source.config_text)
        if redacted is None:
            notes.append(
                "config/pgwarden.toml left out: a password in it could not be redacted line by "
                "line; config/effective.json shows the config with every password redacted"
            )
        else:
            add("config/pgwarden.toml", "config file, passwords redacted", pieces(redacted))
    add(
        "config/effective.json",
        "the config pgwarden used, passwords redacted",
        pieces(effective_config_json(source.config)),
    )
    key = source.signing_key
    manifest = Manifest(
        tool_version=__version__,
        created_at=datetime.now(UTC),
        scan=ScanRecord(
            started_at=results.scan.started_at,
            finished_at=results.scan.finished_at,
            complete=results.scan.complete,
            config=results.scan.config,
            config_sha256=results.scan.config_sha256,
            snapshot=results.scan.snapshot,
        ),
        servers=_servers(results, source.snapshot),
        files=tuple(
            BundledFile(path=f.path, sha256=f.sha256, size=f.size, content=f.what) for f in files
        ),
        notes=tuple(notes),
        signature=SignatureInfo(public_key_sha256=public_key_fingerprint(key.public_key()))
        if key is not None
        else None,
    )
    manifest_bytes = manifest.to_bytes()
    entries: list[tuple[str, bytes | _File]] = [(MANIFEST, manifest_bytes)]
    if key is not None:
        entries.append((SIGNATURE, sign(key, manifest_bytes)))
    entries += [(f.path, f) for f in files]
    return _zip(entries, results.scan.started_at)


def _servers(results: Results, snapshot: SnapshotFile | None) -> tuple[ScannedServer, ...]:
    identities = snapshot.identities if snapshot is not None else {}
    return tuple(
        ScannedServer(
            name=s.name,
            host=s.host,
            postgres_version=s.version,
            postgres_role=s.connected_as,
            azure_identity=identities.get(s.name),
        )
        for s in results.servers
    )


def _zip(entries: list[tuple[str, bytes | _File]], stamp: datetime) -> bytes:
    moment = stamp.astimezone(UTC) if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
    moment = max(moment, _EARLIEST)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=moment.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            if isinstance(data, bytes):
                archive.writestr(info, data)
                continue
            info.file_size = data.size
            data.staged.seek(0)
            with archive.open(info, "w") as target:
                shutil.copyfileobj(data.staged, target, _CHUNK)
    return buffer.getvalue()
