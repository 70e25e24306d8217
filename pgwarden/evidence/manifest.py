"""The bundle's manifest: what each file is and its SHA-256, and who ran the scan when.

The manifest is the one file a signature covers: its bytes list every other file by
hash, so checking the hashes against the manifest and the manifest against the
signature (or a copy of its hash kept elsewhere) proves the bundle is as written.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pgwarden.model.snapshot import AzureIdentity

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
BUNDLE_VERSION: Literal["1.0"] = "1.0"


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BundledFile(_Doc):
    """One file of the bundle."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    content: str = Field(description="what the file is")


class ScanRecord(_Doc):
    """The scan the bundle is the evidence of."""

    started_at: datetime
    finished_at: datetime
    complete: bool
    config: str | None = None
    config_sha256: str | None = Field(
        default=None, description="SHA-256 of the config file as read (before redaction)"
    )
    snapshot: str | None = Field(default=None, description="the snapshot, when scanned offline")


class ScannedServer(_Doc):
    """One server of the scan, and who pgwarden was on it."""

    name: str
    host: str | None = None
    postgres_version: str | None = None
    postgres_role: str | None = Field(default=None, description="the role pgwarden logged in as")
    azure_identity: AzureIdentity | None = Field(
        default=None, description="the Azure identity pgwarden signed in as"
    )


class SignatureInfo(_Doc):
    """How ``manifest.json.sig`` was made."""

    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key_sha256: str = Field(description="SHA-256 of the raw 32-byte public key")
    signs: str = Field(default=MANIFEST, description="the file whose exact bytes are signed")


class Manifest(_Doc):
    """``manifest.json``."""

    pgwarden_evidence: Literal["1.0"] = BUNDLE_VERSION
    tool_version: str
    created_at: datetime
    scan: ScanRecord
    servers: tuple[ScannedServer, ...] = ()
    files: tuple[BundledFile, ...]
    notes: tuple[str, ...] = ()
    signature: SignatureInfo | None = None

    def to_bytes(self) -> bytes:
        """The manifest as written into the bundle (and signed): pretty JSON in UTF-8."""
        return (self.model_dump_json(indent=2, exclude_none=True) + "\n").encode("utf-8")


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
