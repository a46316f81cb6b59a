"""Small helpers shared by the algorithm modules."""

from __future__ import annotations

__all__ = ["none_check"]


def none_check(value):
    """A string containing 'none' (any case) becomes None; anything else is returned as is."""
    if isinstance(value, str) and "none" in value.lower():
        return None
    return value
