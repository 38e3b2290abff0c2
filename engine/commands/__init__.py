"""Subcommands of python -m engine."""
