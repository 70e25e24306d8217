"""Detached Ed25519 signatures over the manifest, with a key the user supplies.

Keys are read with the ``cryptography`` package (already installed with
azure-identity, through msal): a private key as PEM (PKCS#8) or OpenSSH, unencrypted
or encrypted with the passphrase in ``PGWARDEN_SIGNING_KEY_PASSPHRASE``; a public key
as PEM or an OpenSSH ``ssh-ed25519`` line. Only Ed25519 keys are accepted.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pgwarden.evidence.manifest import sha256_of
from pgwarden.model.errors import UsageError

PASSPHRASE_VARIABLE = "PGWARDEN_SIGNING_KEY_PASSPHRASE"  # noqa: S105 - a variable's name


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the file; every problem is one UsageError line."""
    data = _read_key(path, "--signing-key")
    passphrase = os.environ.get(PASSPHRASE_VARIABLE)
    try:
        try:
            key = _private_key(data, None)
        except TypeError:  # encrypted: the passphrase is needed
            if not passphrase:
                raise UsageError(
                    f"--signing-key {path}: the key is encrypted; set {PASSPHRASE_VARIABLE} "
                    "to its passphrase"
                ) from None
            key = _private_key(data, passphrase.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UsageError(
            f"--signing-key {path}: not a readable private key (PEM or OpenSSH; a wrong "
            "passphrase reads the same)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"--signing-key {path}: not an Ed25519 key")
    return key


def _private_key(data: bytes, password: bytes | None) -> object:
    if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY"):
        return serialization.load_ssh_private_key(data, password)
    return serialization.load_pem_private_key(data, password)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the file (PEM, or an OpenSSH ``ssh-ed25519`` line)."""
    data = _read_key(path, "--public-key")
    key: object
    try:
        if data.lstrip().startswith(b"ssh-"):
            key = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise UsageError(
            f"--public-key {path}: not a readable public key (PEM or OpenSSH)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"--public-key {path}: not an Ed25519 key")
    return key


def public_key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key: which key signed, in the manifest."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_of(raw)


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The detached signature of ``data``."""
    return key.sign(data)


def signature_valid(key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature of ``data``."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _read_key(path: Path, option: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read: {exc.strerror}") from None
    if len(data) > 64 * 1024:
        raise UsageError(f"{option} {path}: too large to be a key")
    return data
