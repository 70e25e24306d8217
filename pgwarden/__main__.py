"""``python -m pgwarden`` runs the CLI."""

from __future__ import annotations

from pgwarden.scanner.cli import main

main()
