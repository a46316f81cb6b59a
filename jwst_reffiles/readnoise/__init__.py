"""Readnoise reference files (CDS noise from dark ramps)."""
