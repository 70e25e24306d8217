"""``pgwarden verify``: check an evidence bundle (exit 0 intact, 1 altered)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pgwarden.cli.exits import one_line_errors
from pgwarden.evidence.signing import load_public_key
from pgwarden.evidence.verify import verify_bundle
from pgwarden.model.errors import EXIT_OK, EXIT_VIOLATIONS


@click.command("verify")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option(
    "--public-key",
    "public_key_path",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="also check the bundle's Ed25519 signature with this public key (PEM or OpenSSH)",
)
def verify_cmd(bundle_path: Path, public_key_path: Path | None) -> None:
    """Check an evidence bundle against its manifest (0 intact, 1 altered)."""
    with one_line_errors():
        key = load_public_key(public_key_path) if public_key_path else None
        found = verify_bundle(bundle_path, key)
        manifest = found.manifest
        if manifest is not None:
            scan = manifest.scan
            click.echo(
                f"{bundle_path}: pgwarden {manifest.tool_version} scan of "
                f"{', '.join(s.name for s in manifest.servers) or 'no server'}, started "
                f"{scan.started_at.isoformat()}, finished {scan.finished_at.isoformat()}"
            )
        for problem in found.problems:
            click.echo(f"ALTERED: {problem}")
        signature = {
            "valid": "signature: valid (Ed25519, the given key)",
            "not checked": "signature: present, not checked (give --public-key)",
            "none": "signature: none",
            "missing": "signature: missing",
            "invalid": "signature: INVALID",
        }[found.signature]
        click.echo(signature)
        if found.intact:
            click.echo(f"intact: {found.checked} file(s) match the manifest")
            sys.exit(EXIT_OK)
        click.echo("NOT intact: the bundle is not as pgwarden wrote it")
        sys.exit(EXIT_VIOLATIONS)
