"""Bad pixel masks."""
