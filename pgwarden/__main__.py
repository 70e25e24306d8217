"""``python -m pgwarden`` runs the CLI."""

from __future__ import annotations

from pgwarden.cli.main import main

main()
