"""``python -m ceso`` runs the CLI."""

from ceso.cli import main

main()
