"""ARC apiserver."""
