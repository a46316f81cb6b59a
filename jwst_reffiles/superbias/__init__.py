"""Superbias reference files."""
