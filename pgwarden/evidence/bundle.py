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
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
    sha256_of,
)
from pgwarden.evidence.redaction import effective_config_json, redacted_config_text
from pgwarden.evidence.signing import public_key_fingerprint, sign
from pgwarden.model.config import Config
from pgwarden.model.results import Results
from pgwarden.model.snapshot import Snapshot
from pgwarden.reports.registry import RENDERERS

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


@dataclass
class BundleInput:
    """What one scan hands to the bundle."""

    results: Results
    config: Config
    snapshot: Snapshot | None = None
    config_text: str | None = None
    signing_key: Ed25519PrivateKey | None = None
    notes: list[str] = field(default_factory=list)


def build_bundle(source: BundleInput) -> bytes:
    """The evidence bundle of one scan, as the bytes of a zip archive."""
    results = source.results
    notes = list(source.notes)
    files: list[tuple[str, bytes, str]] = [
        ("results.json", _bytes(RENDERERS["json"][0](results)), "results (pgwarden JSON)")
    ]
    if source.snapshot is not None:
        files.append(
            ("snapshot.json", source.snapshot.to_json().encode("utf-8"), "collected snapshot")
        )
    else:
        notes.append("no snapshot: the results were not produced by this run's collection")
    for name, (path, what) in REPORT_FILES.items():
        files.append((path, _bytes(RENDERERS[name][0](results)), what))
    if source.config_text is not None:
        redacted = redacted_config_text(source.config_text)
        if redacted is None:
            notes.append(
                "config/pgwarden.toml left out: a password in it could not be redacted line by "
                "line; config/effective.json shows the config with every password redacted"
            )
        else:
            files.append(
                (
                    "config/pgwarden.toml",
                    redacted.encode("utf-8"),
                    "config file, passwords redacted",
                )
            )
    files.append(
        (
            "config/effective.json",
            effective_config_json(source.config).encode("utf-8"),
            "the config pgwarden used, passwords redacted",
        )
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
            BundledFile(path=path, sha256=sha256_of(data), size=len(data), content=what)
            for path, data, what in files
        ),
        notes=tuple(notes),
        signature=SignatureInfo(public_key_sha256=public_key_fingerprint(key.public_key()))
        if key is not None
        else None,
    )
    manifest_bytes = manifest.to_bytes()
    entries = [(MANIFEST, manifest_bytes)]
    if key is not None:
        entries.append((SIGNATURE, sign(key, manifest_bytes)))
    entries += [(path, data) for path, data, _what in files]
    return _zip(entries, results.scan.started_at)


def _servers(results: Results, snapshot: Snapshot | None) -> tuple[ScannedServer, ...]:
    identities = {
        s.name: s.azure.identity
        for s in (snapshot.servers if snapshot is not None else ())
        if s.azure is not None
    }
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


def _zip(entries: list[tuple[str, bytes]], stamp: datetime) -> bytes:
    moment = stamp.astimezone(UTC) if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
    moment = max(moment, _EARLIEST)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=moment.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content
