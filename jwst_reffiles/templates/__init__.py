"""Templates for users (copy, rename, edit)."""
