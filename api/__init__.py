"""ARC api."""
