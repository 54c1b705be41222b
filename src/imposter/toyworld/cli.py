"""Subcommands of this package (none yet)."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the ``imposter`` parser."""
