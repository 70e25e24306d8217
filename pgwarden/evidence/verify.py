"""Checking an evidence bundle: every file as the manifest lists it, nothing added.

The bundle is intact when it is a readable zip, its manifest parses, every file the
manifest lists is there with that size and SHA-256, and nothing else is there (but
the signature). With a public key, the signature must also be the key's signature of
the manifest's exact bytes; without one, a signature present is reported as not
checked. Nothing is extracted: entries are read in memory, so names in a crafted
archive can point nowhere.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from pgwarden.evidence.manifest import MANIFEST, SIGNATURE, Manifest, sha256_of
from pgwarden.evidence.signing import public_key_fingerprint, signature_valid
from pgwarden.model.errors import UsageError

SignatureState = Literal["valid", "invalid", "missing", "not checked", "none"]
# A bundle entry larger than this is not pgwarden's: refused before it is read.
MAX_ENTRY_BYTES = 2 * 1024 * 1024 * 1024


@dataclass
class Verification:
    """What checking a bundle found."""

    manifest: Manifest | None = None
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    signature: SignatureState = "none"

    @property
    def intact(self) -> bool:
        """Every file as listed, nothing added, and the signature good when it was checked."""
        return not self.problems and self.signature in ("valid", "not checked", "none")


def verify_bundle(path: Path, public_key: Ed25519PublicKey | None = None) -> Verification:
    """Check the bundle at ``path``; a file that is not there is a UsageError."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    result = Verification()
    try:
        with zipfile.ZipFile(path) as archive:
            _check(archive, result, public_key)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as exc:
        result.problems.append(f"not a readable zip archive: {exc}")
    return result


def _check(
    archive: zipfile.ZipFile, result: Verification, public_key: Ed25519PublicKey | None
) -> None:
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.filename in entries:
            result.problems.append(f"{info.filename}: present twice")
        entries[info.filename] = info
    manifest_bytes = _read(archive, entries, MANIFEST, result)
    if manifest_bytes is None:
        return
    try:
        manifest = Manifest.model_validate_json(manifest_bytes)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        place = ".".join(str(p) for p in first["loc"]) or "(top level)"
        result.problems.append(f"{MANIFEST}: not a pgwarden manifest: {place}: {first['msg']}")
        return
    result.manifest = manifest
    listed = {f.path for f in manifest.files}
    for extra in sorted(set(entries) - listed - {MANIFEST, SIGNATURE}):
        result.problems.append(f"{extra}: not listed in the manifest")
    for item in manifest.files:
        data = _read(archive, entries, item.path, result)
        if data is None:
            continue
        result.checked += 1
        if len(data) != item.size or sha256_of(data) != item.sha256:
            result.problems.append(f"{item.path}: altered (its SHA-256 is not the manifest's)")
    _check_signature(archive, entries, manifest, manifest_bytes, result, public_key)


def _check_signature(
    archive: zipfile.ZipFile,
    entries: dict[str, zipfile.ZipInfo],
    manifest: Manifest,
    manifest_bytes: bytes,
    result: Verification,
    public_key: Ed25519PublicKey | None,
) -> None:
    present = SIGNATURE in entries
    if public_key is None:
        result.signature = "not checked" if present else "none"
        return
    if not present:
        result.signature = "missing"
        result.problems.append(f"{SIGNATURE}: the bundle is not signed")
        return
    signature = _read(archive, entries, SIGNATURE, result)
    if signature is None:
        result.signature = "invalid"
        return
    if signature_valid(public_key, manifest_bytes, signature):
        result.signature = "valid"
        return
    result.signature = "invalid"
    fingerprint = public_key_fingerprint(public_key)
    signer = manifest.signature.public_key_sha256 if manifest.signature else None
    why = (
        "signed with another key"
        if signer is not None and signer != fingerprint
        else "the manifest or its signature was changed"
    )
    result.problems.append(f"{SIGNATURE}: not a valid signature by this key ({why})")


def _read(
    archive: zipfile.ZipFile,
    entries: dict[str, zipfile.ZipInfo],
    name: str,
    result: Verification,
) -> bytes | None:
    info = entries.get(name)
    if info is None:
        result.problems.append(f"{name}: missing")
        return None
    if info.file_size > MAX_ENTRY_BYTES:
        result.problems.append(f"{name}: larger than any file pgwarden writes")
        return None
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        # A changed byte in a compressed entry fails its CRC (or inflation) here.
        result.problems.append(f"{name}: unreadable ({exc})")
        return None
