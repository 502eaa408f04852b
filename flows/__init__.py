"""Prefect flows, settings, sources, datasets and the `skillpulse` command line."""

__version__ = "0.1.0"
