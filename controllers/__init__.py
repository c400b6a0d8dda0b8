"""ARC controllers."""
