"""Tests of the evidence bundle, and the helpers that alter bundles as an attacker would."""

from __future__ import annotations

import zipfile
from pathlib import Path


def rewrite_entry(
    source: Path,
    target: Path,
    name: str,
    *,
    flip: int | None = None,
    content: bytes | None = None,
) -> None:
    """A copy of the bundle with one entry changed (one byte flipped, or replaced whole).

    The copy is a valid zip (each entry's CRC matches its new content): only the
    manifest's hashes can tell.
    """
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == name:
                if content is not None:
                    data = content
                elif flip is not None:
                    changed = bytearray(data)
                    changed[flip] ^= 0x01
                    data = bytes(changed)
            copy.writestr(info, data)
