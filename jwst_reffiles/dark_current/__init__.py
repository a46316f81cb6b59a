"""Dark current reference files and bad pixels from darks."""
