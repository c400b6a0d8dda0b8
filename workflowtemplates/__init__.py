"""ARC workflowtemplates."""
