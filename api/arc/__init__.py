"""ARC API groups."""
